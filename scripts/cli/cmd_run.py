"""The main job (the README's first command): search -> funnel -> simplify -> recognise -> export.

Runs a default search (AdamW warm start, the calibrated proxy suite, local Ray on every core)
for a wall-time budget, re-checks the best distinct programs on the 10x meta-validation
suite, simplifies the winner (sympy rules, then ablation measured over seeds), recognises it,
exports it as a torch optimizer, and compares it with AdamW and Lion on meta-validation.

Usage: optsearch run [--minutes 11] [--seed 0] [--out DIR] ...
       optsearch run --from-run RUN_DIR   # a finished search: funnel on

The comparison includes AdamW and Lion with their step size tuned the way the search's warm
start is (search.init_lr_factors, best on the search suite): against the references at their
fixed lr 1e-3 / 1e-4 any program that merely found a better step size would look like a win.
"""

from __future__ import annotations

import argparse
import math
import os
import time

from optsearch.cli.cmd_search import build_config, default_run_dir, execute
from optsearch.cli.errors import UserError


def add_parser(sub) -> None:
    p = sub.add_parser("run", help="the main job: search, funnel, simplify, recognise, export",
                       description=__doc__.splitlines()[0])
    add_arguments(p)
    p.set_defaults(func=run)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="optsearch run", description=__doc__.splitlines()[0])
    add_arguments(p)
    return p.parse_args(argv)


def add_arguments(p) -> None:
    p.add_argument("--minutes", type=float, default=11.0, help="wall time for the search")
    p.add_argument("--budget", type=int, default=100_000, help="evaluation cap for the search")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="run directory (default: runs/<time>-s<seed>)")
    p.add_argument("--config", help="search TOML config (default: configs/default.toml values)")
    p.add_argument("--backend", default="ray", choices=("ray", "serial"))
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--address", help="Ray cluster address")
    p.add_argument("--suite", help="proxy suite for the search")
    p.add_argument("--scales", default="10", help="funnel stages, e.g. '10' or '10,100'")
    p.add_argument("--top-k", type=int, default=3, help="programs entering the funnel")
    p.add_argument("--from-run", metavar="RUN_DIR",
                   help="skip the search: funnel, simplify and export this finished run")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(init=None, fake_delay=None)


def run_search(args):
    from optsearch.cli.programs import read_program
    from optsearch.evaluator.backends import BackendUnavailable
    from optsearch.search.backend import worker_count
    from optsearch.search.driver import start_run

    if args.from_run:
        return existing_run(args.from_run)
    config = build_config(args)
    run_dir = args.out or default_run_dir(config.search.seed)
    init = config.search.init
    try:
        driver = start_run(run_dir, config, None if init == "random" else read_program(init))
    except BackendUnavailable as exc:
        raise UserError(str(exc)) from None
    deadline = time.monotonic() + 60.0 * args.minutes
    print(f"search: {run_dir} ({args.minutes:g} min, backend {config.evaluation.backend}, "
          f"{worker_count(config.evaluation)} workers, suite {config.evaluation.suite})", flush=True)
    if execute(driver, run_dir, quiet=args.quiet, deadline=deadline) != 0:
        raise KeyboardInterrupt
    return run_dir, config


def existing_run(run_dir):
    from optsearch.search.config import ConfigError, load
    from optsearch.search.store import DB_NAME

    if not os.path.exists(os.path.join(run_dir, DB_NAME)):
        raise UserError(f"{run_dir}: not a run directory (no {DB_NAME})")
    try:
        config = load(os.path.join(run_dir, "config.toml"))
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    print(f"search: using the finished run {run_dir} (suite {config.evaluation.suite})")
    return run_dir, config


def lr_tuned_references(args, config, names=("adamw", "lion")):
    """Each reference at the best of the warm start's lr factors on the search suite."""
    from optsearch.primitives.printer import format_program
    from optsearch.primitives.reference import load_reference
    from optsearch.search.distill.funnel import evaluate_all
    from optsearch.search.evolution import selection_value
    from optsearch.search.warm_start import lr_sweep, parse_factors

    factors = parse_factors(config.search.init_lr_factors)
    jobs = [(name, f, format_program(p)) for name in names
            for f, p in zip(factors, lr_sweep(load_reference(name), factors))]
    with backend_factory(args, tuple(range(config.evaluation.seeds)))(
            config.evaluation.suite) as backend:
        fitness = evaluate_all(backend, {k: text for k, (_, _, text) in enumerate(jobs)})
    best = {}
    for name in names:
        k = max((k for k, job in enumerate(jobs) if job[0] == name),
                key=lambda k: selection_value(fitness[k].aggregate))  # ties: the first factor
        best[name] = jobs[k][1:]
    return best


def backend_factory(args, seeds):
    from optsearch.evaluator.backends import make_backend

    def factory(suite):
        return make_backend(args.backend, workers=args.workers, address=args.address,
                            suite=suite, seeds=seeds)
    return factory


def run_funnel_stage(run_dir, config, args):
    from optsearch.search.distill.funnel import run_funnel
    from optsearch.search.store import RunStore

    store = RunStore.open(run_dir)
    try:
        scales = tuple(int(s) for s in args.scales.split(",") if s)
        seeds = tuple(range(config.evaluation.seeds))
        stages = run_funnel(store, backend_factory(args, seeds), config.evaluation.suite,
                            scales=scales, top_k=args.top_k)
        for stage in stages:
            for r in stage:
                print(f"  candidate {r.candidate_id:5d} on {r.suite}: {r.aggregate:.3f} "
                      f"± {r.stderr:.3f} vs AdamW 1.0 -> {'pass' if r.passed else 'stop'}")
        winner = store.winner()
        if winner is None:
            raise UserError("the search finished no program successfully")
        return winner.program, stages
    finally:
        store.close()


def simplify_winner(text, config):
    from optsearch.evaluator.evaluate import evaluate
    from optsearch.evaluator.noise import mean_stderr
    from optsearch.primitives import parse
    from optsearch.search.distill.simplify import simplify

    seeds = tuple(range(config.evaluation.seeds))

    def measure(program):
        return mean_stderr(evaluate(program, suite=config.evaluation.suite, seeds=seeds))

    return simplify(parse(text), measure=measure)


def choose_export(table, result, raw_text):
    """Ship the simplified program unless meta-validation says it lost beyond noise.

    Ablations are accepted within noise at search scale; a change that is harmless there
    can still hurt on the 10x tasks, so the larger suite has the last word (2 s.e.)."""
    from optsearch.primitives import parse

    (m_raw, e_raw), (m_simple, e_simple) = table["discovered (raw)"], table["discovered (simplified)"]
    if m_simple >= m_raw - 2.0 * math.hypot(e_raw, e_simple):
        rec = result.recognition
        program = rec.program if rec.name != "new" else result.program
        return program, (rec if rec.name != "new" else None), "simplified"
    return parse(raw_text), None, "raw (the simplified form lost on meta-validation)"


def verdict(table: dict, shipped: str) -> str:
    """One line: does the shipped program beat the best lr-tuned reference on meta-validation
    beyond noise (2 combined s.e.)? The untuned references are not the bar: a program that
    merely found a better step size beats them by the step size alone."""
    mean, err = table[shipped]
    tuned = {name: v for name, v in table.items() if name.endswith("tuned)")}
    best = max(tuned, key=lambda name: tuned[name][0])
    b_mean, b_err = tuned[best]
    margin = 2.0 * math.hypot(err, b_err)
    if mean > b_mean + margin:
        word = "beats"
    elif mean < b_mean - margin:
        word = "LOSES to"
    else:
        word = "is level with"
    return (f"verdict: the exported program ({mean:.3f}) {word} the best lr-tuned reference, "
            f"{best} ({b_mean:.3f}), on meta-validation (2 s.e. = {margin:.3f})")


def export(run_dir, program, recognition) -> str:
    from optsearch.primitives.export import export_source

    class_name = recognition.name.replace("-", "") if recognition else "DiscoveredOptimizer"
    out = os.path.join(run_dir, "optimizer.py")
    with open(out, "w") as fh:
        fh.write(export_source(program, class_name=class_name, recognition=recognition))
    return out


def save_programs(run_dir, texts: dict) -> None:
    """The funnel winner and its simplified form as program files, so that other tools
    (optsearch evaluate / simplify, scripts/research/generalization) can take them directly."""
    for name, text in texts.items():
        with open(os.path.join(run_dir, name), "w") as fh:
            fh.write(text if text.endswith("\n") else text + "\n")


def compare(args, config, programs: dict, scale: int):
    """Fitness of each program on the meta-validation suite (AdamW = 1.0 by construction)."""
    from optsearch.evaluator.noise import mean_stderr
    from optsearch.search.distill.funnel import evaluate_all, stage_suite

    suite = stage_suite(config.evaluation.suite, scale)
    with backend_factory(args, tuple(range(config.evaluation.seeds)))(suite) as backend:
        names = list(programs)
        done = evaluate_all(backend, {k: programs[name] for k, name in enumerate(names)})
    fitness = {name: done[k] for k, name in enumerate(names)}
    return (suite.name, {name: mean_stderr(f) for name, f in fitness.items()},
            {name: getattr(f, "status", "ok") for name, f in fitness.items()})


def main(argv=None) -> int:
    return run(parse_args(argv))


def run(args) -> int:
    from optsearch.primitives.printer import format_program
    from optsearch.primitives.reference import reference_text

    t0 = time.monotonic()
    run_dir, config = run_search(args)
    print("funnel selection:", flush=True)
    final_text, _ = run_funnel_stage(run_dir, config, args)
    print("simplifying the winner (ablations measured over seeds)...", flush=True)
    result = simplify_winner(final_text, config)
    rec = result.recognition
    scale = int(args.scales.split(",")[0])
    tuned = lr_tuned_references(args, config)
    suite_name, table, statuses = compare(args, config, {
        "discovered (raw)": final_text, "discovered (simplified)": format_program(result.program),
        "AdamW (reference)": reference_text("adamw"),
        "Lion (reference, lr 1e-4)": reference_text("lion"),
        f"AdamW (lr x{tuned['adamw'][0]:g}, tuned)": tuned["adamw"][1],
        f"Lion (lr x{tuned['lion'][0]:g}, tuned)": tuned["lion"][1]}, scale)
    program, recognition, which = choose_export(table, result, final_text)
    exported = export(run_dir, program, recognition)
    save_programs(run_dir, {"winner.py": final_text, "simplified.py": format_program(result.program)})
    print("\n=== discovered program ===\n" + final_text)
    print("=== simplified ===\n" + format_program(result.program))
    hp = ", ".join(f"{k}={v:g}" for k, v in rec.hyperparameters.items())
    print(f"recognised: {rec.name}" + (f" ({hp})" if hp else ""))
    print(f"\nfitness on meta-validation suite {suite_name} (AdamW = 1.0; mean ± s.e. over seeds):")
    for name, (mean, err) in table.items():
        status = "" if statuses[name] == "ok" else f"  ({statuses[name]})"
        print(f"  {name:28s} {mean:.3f} ± {err:.3f}{status}")
    if statuses["discovered (raw)"] != "ok" and statuses["discovered (simplified)"] != "ok":
        print("warning: the discovered program failed on the meta-validation suite; it is "
              "exported, but it does not transfer to the larger tasks")
    shipped = "discovered (simplified)" if which == "simplified" else "discovered (raw)"
    print(verdict(table, shipped))
    print(f"\nexported optimizer ({which}): {exported}")
    print(f"programs: {run_dir}/winner.py (funnel winner), {run_dir}/simplified.py")
    print(f"run directory: {run_dir}  (optsearch inspect {run_dir} report)")
    print(f"total wall time: {(time.monotonic() - t0) / 60:.1f} min")
    return 0

