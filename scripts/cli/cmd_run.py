"""The main job (the README's first command): search -> funnel -> simplify -> recognise -> export.

Runs a default search (AdamW warm start, the calibrated proxy suite, local Ray on every core)
for a wall-time budget, re-checks the best distinct programs on the 10x meta-validation
suite, simplifies the winner (sympy rules, then ablation measured over seeds), recognises it,
exports it as a torch optimizer, and compares it with AdamW and Lion on meta-validation.
The job itself is `optsearch.search.pipeline`; this module reads the options and prints.

Usage: optsearch run [--minutes 11] [--seed 0] [--out DIR] ...
       optsearch run --from-run RUN_DIR   # a finished search: funnel on
"""

from __future__ import annotations

import argparse
import functools
import os
import time

from optsearch.cli.cmd_search import add_verbose, build_config, default_run_dir, execute, ray_logs
from optsearch.cli.errors import UserError
from optsearch.primitives.pool import POOLS
from optsearch.search.pipeline import verdict

log = functools.partial(print, flush=True)


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
    p.add_argument("--address", help="Ray cluster address, 'auto' or HOST:PORT")
    p.add_argument("--gpus-per-worker", type=float, metavar="G",
                   help="GPUs per Ray worker (0.25: four share a GPU); evaluations run on CUDA")
    p.add_argument("--suite", help="proxy suite for the search")
    p.add_argument("--pool", choices=POOLS, help="functions mutation draws from ('paper': the "
                   "Lion paper's pool, no per-tensor mean)")
    p.add_argument("--scales", default="10", help="funnel stages, e.g. '10' or '10,100'")
    p.add_argument("--top-k", type=int, default=3, help="programs entering the funnel")
    p.add_argument("--from-run", metavar="RUN_DIR",
                   help="skip the search: funnel, simplify and export this finished run")
    p.add_argument("--quiet", action="store_true")
    add_verbose(p)
    p.set_defaults(init=None, fake_delay=None, target=None)  # search options run does not take


def finished_run_config(args):
    """A finished run's own config, evaluated on the backend the command line names."""
    from optsearch.search.config import ConfigError, load
    from optsearch.search.store import CONFIG_NAME, DB_NAME

    run_dir = args.from_run
    if not os.path.exists(os.path.join(run_dir, DB_NAME)):
        raise UserError(f"{run_dir}: not a run directory (no {DB_NAME})")
    try:
        return load(os.path.join(run_dir, CONFIG_NAME)).with_overrides(
            backend=args.backend, workers=args.workers, address=args.address,
            gpus_per_worker=args.gpus_per_worker)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def scales(args) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in args.scales.split(",") if s)
    except ValueError:
        raise UserError(f"--scales: expected numbers like '10' or '10,100', got {args.scales!r}") \
            from None


def main_job(args):
    """The pipeline, with the search watched by the CLI's progress bar."""
    from optsearch.cli.programs import read_program
    from optsearch.evaluator.backends import BackendUnavailable
    from optsearch.search import pipeline

    stages = scales(args)
    if args.from_run:
        config = finished_run_config(args)
        log(f"search: using the finished run {args.from_run} (suite {config.evaluation.suite})")
        with ray_logs(config, args.from_run, args.verbose):
            return pipeline.distill(args.from_run, config, stages, args.top_k, log)
    config = build_config(args)
    run_dir = args.out or default_run_dir(config.search.seed)
    init = config.search.init

    def runner(driver, deadline):
        if execute(driver, run_dir, quiet=args.quiet, deadline=deadline) != 0:
            raise KeyboardInterrupt

    try:
        with ray_logs(config, run_dir, args.verbose):
            return pipeline.run_main_job(run_dir, config,
                                         None if init == "random" else read_program(init),
                                         args.minutes, stages, args.top_k, runner, log)
    except FileExistsError:
        raise UserError(f"{run_dir} already holds a run; continue its search with 'optsearch "
                        f"resume {run_dir}', or finish it with 'optsearch run --from-run "
                        f"{run_dir}'") from None
    except (BackendUnavailable, pipeline.NoWinner) as exc:
        raise UserError(str(exc)) from None


def main(argv=None) -> int:
    return run(parse_args(argv))


def run(args) -> int:
    from optsearch.primitives.printer import format_program

    t0 = time.monotonic()
    job = main_job(args)
    simplified, rec = format_program(job.simplification.program), job.simplification.recognition
    print("\n=== discovered program ===\n" + job.winner)
    print("=== simplified ===\n" + simplified)
    hp = ", ".join(f"{k}={v:g}" for k, v in rec.hyperparameters.items())
    print(f"recognised: {rec.label}" + (f" ({hp})" if hp else ""))
    print(f"\nfitness on meta-validation suite {job.suite} (AdamW = 1.0; mean ± s.e. over seeds):")
    for name, (mean, err) in job.table.items():
        status = "" if job.statuses[name] == "ok" else f"  ({job.statuses[name]})"
        print(f"  {name:28s} {mean:.3f} ± {err:.3f}{status}")
    raw, simple = job.statuses["discovered (raw)"], job.statuses["discovered (simplified)"]
    if raw != "ok" and simple != "ok":
        print("warning: the discovered program failed on the meta-validation suite; it is "
              "exported, but it does not transfer to the larger tasks")
    print(verdict(job.table, job.shipped))
    print(f"\nexported optimizer ({job.how}): {job.exported}")
    print(f"programs: {job.run_dir}/winner.py (funnel winner), {job.run_dir}/simplified.py")
    print(f"run directory: {job.run_dir}  (optsearch inspect {job.run_dir} report)")
    print(f"total wall time: {(time.monotonic() - t0) / 60:.1f} min")
    return 0
