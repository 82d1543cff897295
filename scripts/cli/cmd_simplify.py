"""`optsearch simplify FILE|RUN_DIR [--no-eval] [--json]`: simplified program, trace, name.

With evaluation (the default) ablation and constant rounding are judged by the fitness over
seeds (`evaluator.evaluate`); `--no-eval` runs only the steps that need no training and rounds
constants to 3 significant digits.

A run directory gives the run's winner: the best program of the last funnel stage that has
results (what the main job simplifies), else the search's `best.py`; the measure then uses the
run's suite and seeds (config.toml) unless --suite / --seeds say otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sqlite3

from optsearch.cli.errors import UserError
from optsearch.cli.programs import read_program
from optsearch.primitives.analysis import check
from optsearch.primitives.parser import parse
from optsearch.primitives.printer import format_program
from optsearch.primitives.program import ProgramError
from optsearch.search.distill.simplify import simplify


def add_parser(sub) -> None:
    p = sub.add_parser("simplify", help="simplify a program, show the derivation, recognise it")
    p.add_argument("file", help="program file, run directory, or a reference name such as "
                   "'program4'")
    p.add_argument("--no-eval", action="store_true",
                   help="only the steps that need no training (no ablation by fitness)")
    p.add_argument("--suite", default=None,
                   help="proxy-task suite for the measure (default: the run's, else 'default')")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds 0..N-1 for the measure (default: the run's, else 4)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def make_measure(suite: str, seeds: int):
    """measure(program) -> (mean, stderr) of the aggregate fitness over seeds."""
    from optsearch.evaluator import evaluate  # torch and the tasks load only when measuring

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


def run_dir_input(run_dir: str):
    """(program text, where it came from, suite, seeds) of a run directory's winner."""
    suite, seeds = None, None
    config_path = os.path.join(run_dir, "config.toml")
    if os.path.isfile(config_path):
        from optsearch.search.config import ConfigError, load
        try:
            config = load(config_path)
            suite, seeds = config.evaluation.suite, config.evaluation.seeds
        except ConfigError as exc:
            raise UserError(str(exc)) from None
    winner = _funnel_winner(run_dir)
    if winner is not None:
        cid, stage, text = winner
        return text, f"{run_dir}: candidate {cid}, best of funnel stage {stage}", suite, seeds
    best = os.path.join(run_dir, "best.py")
    if not os.path.isfile(best):
        raise UserError(f"{run_dir}: not a run directory with results (no funnel results, "
                        "no best.py)")
    with open(best, encoding="utf-8") as fh:
        return fh.read(), best, suite, seeds


def _funnel_winner(run_dir: str):
    """(candidate id, stage, program text) of the last funnel stage's best, or None."""
    path = os.path.join(run_dir, "run.sqlite")
    if not os.path.isfile(path):
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT f.candidate_id, f.stage, c.program FROM funnel f "
                "JOIN candidates c ON c.id = f.candidate_id "
                "ORDER BY f.stage DESC, f.aggregate DESC, f.candidate_id LIMIT 1").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:  # no funnel table yet, or not a run database
        return None
    return None if row is None else (row[0], row[1], row[2])


def result_dict(result, source: str | None = None) -> dict:
    rec = result.recognition
    return {
        "source": source,
        "program": format_program(result.program),
        "recognized": rec.name,
        "hyperparameters": rec.hyperparameters,
        "template_program": format_program(rec.program) if rec.name != "new" else None,
        "trace": [dataclasses.asdict(step) for step in result.trace],
    }


def run(args) -> int:
    suite, seeds = None, None
    if os.path.isdir(args.file):
        text, source, suite, seeds = run_dir_input(args.file)
        program = _parse_stored(text, source)
    else:
        program, source = read_program(args.file), args.file
    suite = args.suite or suite or "default"
    seeds = args.seeds or seeds or 4
    measure = None if args.no_eval else make_measure(suite, seeds)
    result = simplify(program, measure)
    info = result_dict(result, source)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"simplifying {source}" + ("" if measure is None else
                                    f" (measure: suite {suite}, seeds 0..{seeds - 1})"))
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


def _parse_stored(text: str, source: str):
    try:
        program = parse(text)
        check(program)
    except ProgramError as exc:
        exc.filename = source
        raise
    return program
