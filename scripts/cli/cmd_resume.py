"""`optsearch resume RUN_DIR`: continue a stopped or killed search job."""

from __future__ import annotations

import os
import sys

from optsearch.cli.cmd_search import add_verbose, execute, ray_logs
from optsearch.cli.errors import UserError
from optsearch.evaluator.backends import BackendUnavailable
from optsearch.search.config import ConfigError, load
from optsearch.search.driver import resume_run
from optsearch.search.store import CONFIG_NAME


def add_parser(sub) -> None:
    p = sub.add_parser("resume", help="continue a stopped or killed search job")
    p.add_argument("run_dir", help="run directory written by 'optsearch search'")
    p.add_argument("--budget", type=int, help="new total evaluation budget (default: the run's)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_verbose(p)
    p.set_defaults(func=run)


def run(args) -> int:
    config_path = os.path.join(args.run_dir, CONFIG_NAME)
    try:
        config = load(config_path) if os.path.exists(config_path) else None
    except ConfigError as exc:
        raise UserError(str(exc)) from None
    with ray_logs(config, args.run_dir, args.verbose):
        try:
            driver = resume_run(args.run_dir, budget=args.budget)
        except (FileNotFoundError, ConfigError, BackendUnavailable) as exc:
            raise UserError(str(exc)) from None
        print(f"resuming {args.run_dir}: {driver.counters['evaluated']} evaluated, "
              f"{len(driver.pending)} re-dispatched", file=sys.stderr)
        return execute(driver, args.run_dir, quiet=args.quiet)
