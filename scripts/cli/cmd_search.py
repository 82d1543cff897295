"""`optsearch search`: start a search job (regularized evolution) in a new run directory."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

from optsearch.cli.errors import UserError
from optsearch.cli.programs import read_program
from optsearch.cli.progress import Progress
from optsearch.evaluator.backends import BACKEND_KINDS, BackendUnavailable
from optsearch.evaluator.targets import TargetError, resolve_target
from optsearch.primitives.pool import POOLS
from optsearch.search.config import TARGET_INIT_LR_FACTORS, ConfigError, load
from optsearch.search.driver import start_run
from optsearch.search.pipeline import stop_at
from optsearch.search.stats import run_stats

RAY_LOG = "ray.log"   # Ray's own log lines, in the run directory


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="run a search job; writes a run directory",
                       description="Regularized evolution over optimizer programs. Defaults are "
                                   "documented in configs/default.toml; flags override "
                                   "the config file.")
    p.add_argument("--config", help="TOML configuration file")
    p.add_argument("--budget", type=int, help="evaluations to run (cache hits are free)")
    p.add_argument("--workers", type=int, help="evaluations in flight")
    p.add_argument("--address", help="Ray cluster address, 'auto' or HOST:PORT (default: start "
                                     "a local instance)")
    p.add_argument("--gpus-per-worker", type=float, metavar="G",
                   help="GPUs per Ray worker (0.25: four share a GPU); evaluations run on CUDA")
    p.add_argument("--seed", type=int, help="seed of the search's random choices")
    p.add_argument("--out", help="run directory to create (default: runs/<time>-s<seed>)")
    p.add_argument("--backend", choices=BACKEND_KINDS, metavar="serial|ray", help="evaluation backend")
    p.add_argument("--suite", help="proxy-task suite")
    p.add_argument("--target", metavar="FILE|NAME|MODULE:CLASS",
                   help="target mode: the fitness is how closely a program imitates this "
                        "optimizer (a program file, a reference name such as 'lion', or a "
                        "class such as torch.optim.NAdam); without --config the warm start's "
                        "lr sweep then spans 1/32..32; see docs/TARGET.md")
    p.add_argument("--init", help="initial program: a file, a reference name, or 'random'")
    p.add_argument("--pool", choices=POOLS, help="functions mutation draws from ('paper': the "
                   "Lion paper's pool, no per-tensor mean)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_verbose(p)
    p.add_argument("--fake-delay", type=float, help=argparse.SUPPRESS)
    p.set_defaults(func=run)


def build_config(args):
    """The config file's settings with the command line's options on top."""
    try:
        # Target mode without a config file: the target's step size is unknown, so the warm
        # start's lr sweep spans both sides of AdamW's.
        wide = TARGET_INIT_LR_FACTORS if args.target is not None and args.config is None else None
        return load(args.config).with_overrides(
            budget=args.budget, seed=args.seed, init=args.init, workers=args.workers,
            address=args.address, backend=args.backend, suite=args.suite,
            fake_delay_s=args.fake_delay, target=target_spec(args.target), init_lr_factors=wide,
            pool=args.pool, gpus_per_worker=args.gpus_per_worker)
    except ConfigError as exc:
        raise UserError(str(exc)) from None


def target_spec(spec: str | None) -> str | None:
    """The --target value as the run's config keeps it: checked now (one-line errors with the
    user's spelling), a program file by its absolute path (so resume works from anywhere)."""
    if spec is None:
        return None
    try:
        resolve_target(spec)
    except TargetError as exc:
        raise UserError(str(exc)) from None
    return os.path.abspath(spec) if os.path.isfile(spec) else spec


def default_run_dir(seed: int) -> str:
    base = os.path.join("runs", time.strftime("%Y%m%d-%H%M%S") + f"-s{seed}")
    path, k = base, 1
    while os.path.exists(path):
        path, k = f"{base}-{k}", k + 1
    return path


def run(args) -> int:
    config = build_config(args)
    init = config.search.init
    initial = None if init == "random" else read_program(init)
    run_dir = args.out or default_run_dir(config.search.seed)
    with ray_logs(config, run_dir, args.verbose):
        try:
            driver = start_run(run_dir, config, initial)
        except FileExistsError:
            raise UserError(f"{run_dir} already holds a run; continue it with "
                            f"'optsearch resume {run_dir}'") from None
        except BackendUnavailable as exc:
            raise UserError(str(exc)) from None
        print(f"run directory: {run_dir}", file=sys.stderr)
        return execute(driver, run_dir, quiet=args.quiet)


def add_verbose(p) -> None:
    p.add_argument("--verbose", action="store_true",
                   help=f"also show Ray's log lines (always in RUN_DIR/{RAY_LOG})")


@contextlib.contextmanager
def ray_logs(config, run_dir: str, verbose: bool = False):
    """While a command runs a Ray search: Ray's log lines go to RUN_DIR/ray.log, and reach
    the terminal only when verbose."""
    if config is None or config.evaluation.backend != "ray":
        yield
        return
    from optsearch.evaluator.ray_backend import RayLogRouting
    os.makedirs(run_dir, exist_ok=True)
    with RayLogRouting(os.path.join(run_dir, RAY_LOG), verbose):
        yield


def execute(driver, run_dir: str, quiet: bool = False, deadline: float | None = None) -> int:
    """Run to the budget with a progress bar; on Ctrl-C stop cleanly (every step is saved).

    deadline (time.monotonic() value): stop proposing then; what is in flight still finishes.
    """
    progress = Progress(None if deadline else driver.budget, driver.counters["screened"],
                        enabled=not quiet)

    stop = stop_at(deadline) if deadline is not None else None

    def on_step(d):
        progress(d)
        if stop is not None:
            stop(d)

    driver.on_step = on_step
    try:
        driver.run()
    except KeyboardInterrupt:
        progress.close()
        driver.close()
        print(f"\nstopped; every finished step is saved. Continue with: "
              f"optsearch resume {run_dir}", file=sys.stderr)
        return 130
    except BaseException:
        driver.close()
        raise
    progress.close()
    stats = run_stats(driver.store)
    driver.close()
    best = stats["best_fitness"]
    fits = (f", {stats['refined']} constant fits ({stats['refine_evaluations']} evaluations)"
            if stats["refined"] else "")
    print(f"done: {stats['evaluated']} evaluated, {stats['cache_hits']} cache hits "
          f"({stats['cache_hit_rate']:.0%}), {stats['failed']} failed{fits}; best fitness "
          f"{'-' if best is None else f'{best:.4f}'} -> {os.path.join(run_dir, 'best.py')}")
    return 0
