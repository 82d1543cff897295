"""`optsearch inspect RUN_DIR [VIEW] [--json]`: look at a run directory.

Each view is a module: `stats` lives here; another view `NAME` (list, show, lineage, plot,
report) is a module `optsearch.cli.inspect_NAME` exposing `add_parser(views)` (adds its
sub-parser and sets `view_func`) and `run(store, args) -> int`.
"""

from __future__ import annotations

import argparse
import json

from optsearch.cli import inspect_lineage, inspect_list, inspect_plot, inspect_report, inspect_show
from optsearch.cli.errors import UserError
from optsearch.search.stats import run_stats
from optsearch.search.store import DatabaseError, RunStore

VIEWS = (inspect_list, inspect_show, inspect_lineage, inspect_plot, inspect_report)


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="look at what a search run found")
    p.add_argument("run_dir", help="run directory")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    views = p.add_subparsers(dest="view", metavar="VIEW")
    stats = views.add_parser("stats", help="counters, best fitness, cache hit rate")
    # SUPPRESS: an absent flag must not reset `inspect RUN --json stats` to False.
    stats.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                       help="print one JSON object")
    stats.set_defaults(view_func=run_stats_view)
    for module in VIEWS:
        module.add_parser(views)
    p.set_defaults(func=run, view_func=run_stats_view)


def run(args) -> int:
    try:
        store = RunStore.open(args.run_dir, readonly=True)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    try:
        return args.view_func(store, args)
    except DatabaseError as exc:  # not an optsearch database, or a damaged one
        raise UserError(f"{args.run_dir}: cannot read the run database ({exc})") from None
    finally:
        store.close()


def run_stats_view(store: RunStore, args) -> int:
    stats = run_stats(store)
    if args.json:
        print(json.dumps(stats, indent=2))
        return 0
    best = stats["best_fitness"]
    rows = [("proposed", stats["proposed"]), ("invalid", stats["invalid"]),
            ("unchanged", stats["unchanged"]), ("cache hits", stats["cache_hits"]),
            ("dup removed", (f"{stats['removed_by_structural_hash']:.1%} of proposals by the "
             f"structural hash, {stats['removed_by_fingerprint']:.1%} by the fingerprint")),
            ("screened", f"{stats['screened']} of {stats['budget']}"),
            ("constant fits", (f"{stats['refined']} ({stats['refine_evaluations']} evaluations, "
             f"in the budget)")),
            ("rung evaluated", (f"{stats['rung_evaluated']} ({stats['rung_failed']} failed), "
             f"{stats['stopped']} stopped at the hurdle")),
            ("evaluated", f"{stats['evaluated']} in full"),
            ("failed", stats["failed"]), ("in flight", stats["in_flight"]),
            ("restarts", stats["restarts"]),
            ("best fitness", "-" if best is None else f"{best:.4f} (candidate {stats['best_id']})"),
            ("cache hit rate", f"{stats['cache_hit_rate']:.1%}"),
            ("dead statements", f"{stats['dead_fraction']:.1%} of the population's")]
    for name, value in rows:
        print(f"{name:16s} {value}")
    return 0
