"""`optsearch simplify FILE [--no-eval] [--json]`: simplified program, derivation trace, name.

With evaluation (the default) ablation and constant rounding are judged by the fitness over
seeds (`evaluator.evaluate`); `--no-eval` runs only the steps that need no training and rounds
constants to 3 significant digits. RUN_DIR input is not supported yet.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys

from primitives.printer import format_program
from scripts.errors import UserError
from scripts.programs import read_program
from search.simplify import simplify


def add_parser(sub) -> None:
    p = sub.add_parser("simplify", help="simplify a program, show the derivation, recognise it")
    p.add_argument("file", help="program file, or a reference name such as 'program4'")
    p.add_argument("--no-eval", action="store_true",
                   help="only the steps that need no training (no ablation by fitness)")
    p.add_argument("--suite", default="default", help="proxy-task suite for the measure")
    p.add_argument("--seeds", type=int, default=4, help="seeds 0..N-1 for the measure")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def make_measure(suite: str, seeds: int):
    """measure(program) -> (mean, stderr) of the aggregate fitness over seeds, or None."""
    try:
        from evaluator import evaluate
    except ImportError as exc:
        print(f"warning: evaluator not available ({exc}); running with --no-eval",
              file=sys.stderr)
        return None

    def measure(program):
        fitness = evaluate(program, suite, tuple(range(seeds)))
        if not fitness.ok:
            return (-math.inf, 0.0)
        values = fitness.seed_aggregates()
        return (fitness.aggregate, _stderr(values))
    return measure


def _stderr(values) -> float:
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1) / n)


def result_dict(result) -> dict:
    rec = result.recognition
    return {
        "program": format_program(result.program),
        "recognized": rec.name,
        "hyperparameters": rec.hyperparameters,
        "template_program": format_program(rec.program) if rec.name != "new" else None,
        "trace": [dataclasses.asdict(step) for step in result.trace],
    }


def run(args) -> int:
    if os.path.isdir(args.file):
        raise UserError(f"{args.file}: simplifying a run directory is not supported yet; "
                        "pass a program file")
    program = read_program(args.file)
    measure = None if args.no_eval else make_measure(args.suite, args.seeds)
    result = simplify(program, measure)
    info = result_dict(result)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for k, step in enumerate(result.trace, 1):
        fit = ""
        if step.fitness_before is not None:
            fit = f"  fitness {step.fitness_before:.4g} -> {step.fitness_after:.4g}"
        exact = "" if step.exact else "  [approximate]"
        print(f"step {k}: {step.rule}{exact}{fit}")
        if step.note:
            print(f"  {step.note}")
    print()
    print(info["program"], end="")
    hyper = ", ".join(f"{k}={v:g}" for k, v in info["hyperparameters"].items())
    print(f"recognized: {info['recognized']}" + (f" ({hyper})" if hyper else ""))
    return 0
