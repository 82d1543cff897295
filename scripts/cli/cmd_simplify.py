"""`optsearch simplify FILE|RUN_DIR [--no-eval] [--json]`: simplified program, trace, name.

With evaluation (the default) ablation and constant rounding are judged by the fitness over
seeds (`evaluator.evaluate`) on the search suite; an ablation that changes the rule's
character (an interpolation, a sign, a state slot) by the meta-validation suite `SUITE@10`
(the funnel's), and the trace says "not resolved by the suite" where neither can tell.
`--no-eval` runs only the steps that need no training and rounds constants to 3 significant
digits.

A run directory gives the run's winner (`RunStore.winner`: the best program of the last
funnel stage, else the best search fitness -- what the main job simplifies and `optsearch
export` writes); the measure then uses the run's suite and seeds (config.toml) unless
--suite / --seeds say otherwise. A target-mode run (evaluation.target) is measured by its
imitation fitness unless --suite says otherwise.
"""

from __future__ import annotations

import dataclasses
import json
import os

from optsearch.cli.errors import UserError
from optsearch.cli.programs import read_program, read_run_winner
from optsearch.primitives.printer import format_program
from optsearch.search.constants import FINAL_FIT_EVALUATIONS
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


META_SCALE = 10  # the meta-validation suite that judges character changes: the funnel's first


def make_measure(suite, seeds: int):
    """The measure on `suite` (a name or an evaluator.suites.Suite) over seeds 0..seeds-1."""
    from optsearch.evaluator.measure import suite_measure
    return suite_measure(suite, range(seeds))


def make_target_measure(target: str, steps: int = 100):
    """The measure of how closely a program imitates `target` on a stream of `steps` steps,
    the run's own (recorded once)."""
    from dataclasses import replace

    from optsearch.evaluator.imitation import DEFAULT_STREAM, record_stream
    from optsearch.evaluator.measure import imitation_measure
    from optsearch.evaluator.targets import TargetError, resolve_target

    try:
        stream = record_stream(resolve_target(target), replace(DEFAULT_STREAM, steps=steps))
    except (TargetError, ValueError) as exc:
        raise UserError(f"target {target}: {exc}") from None
    return imitation_measure(stream, f"imitation of {target}")


def run_target(run_dir: str) -> tuple[str, int]:
    """The target of a target-mode run directory ("" for a proxy-task run) and its stream's
    steps."""
    from optsearch.search.config import ConfigError, load
    try:
        evaluation = load(os.path.join(run_dir, "config.toml")).evaluation
    except ConfigError:
        return "", 0  # run_dir_input reports a broken config
    return evaluation.target, evaluation.target_steps


def make_meta_measure(suite: str, seeds: int):
    """The measure on the meta-validation suite `suite@10`."""
    from optsearch.evaluator.suites import Suite
    try:
        return make_measure(Suite.scaled(suite, META_SCALE), seeds)
    except KeyError as exc:
        raise UserError(str(exc.args[0])) from None


def run_dir_input(run_dir: str):
    """(program, where it came from, suite, seeds) of a run directory's winner."""
    suite, seeds = None, None
    config_path = os.path.join(run_dir, "config.toml")
    if os.path.isfile(config_path):
        from optsearch.search.config import ConfigError, load
        try:
            config = load(config_path)
            suite, seeds = config.evaluation.suite, config.evaluation.seeds
        except ConfigError as exc:
            raise UserError(str(exc)) from None
    program, source = read_run_winner(run_dir)
    return program, source, suite, seeds


def result_dict(result, source: str | None = None) -> dict:
    rec = result.recognition
    return {
        "source": source,
        "program": format_program(result.program),
        "recognized": rec.name,
        "schedule": rec.schedule,
        "hyperparameters": rec.hyperparameters,
        "template_program": format_program(rec.program) if rec.name != "new" else None,
        "trace": [dataclasses.asdict(step) for step in result.trace],
    }


def run(args) -> int:
    suite, seeds = None, None
    if os.path.isdir(args.file):
        program, source, suite, seeds = run_dir_input(args.file)
    else:
        program, source = read_program(args.file), args.file
    suite = args.suite or suite or "default"
    seeds = args.seeds or seeds or 4
    target, steps = run_target(args.file) if os.path.isdir(args.file) and not args.suite else ("", 0)
    if args.no_eval:
        measure, meta, what = None, None, ""
    elif target:
        # Imitating a fixed target has no meta-overfitting: the imitation judges character.
        measure, what = make_target_measure(target, steps), f" (measure: imitation of {target})"
        meta = measure
    else:
        measure, meta = make_measure(suite, seeds), make_meta_measure(suite, seeds)
        what = (f" (measure: suite {suite}, character changes on {suite}@{META_SCALE}, "
                f"seeds 0..{seeds - 1})")
    # An imitation costs milliseconds: the target run's constants are fitted too.
    result = simplify(program, measure, meta, fit_evaluations=FINAL_FIT_EVALUATIONS if
                      target and not args.no_eval else 0)
    info = result_dict(result, source)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"simplifying {source}{what}")
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
    print(f"recognized: {result.recognition.label}" + (f" ({hyper})" if hyper else ""))
    return 0

