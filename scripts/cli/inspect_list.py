"""`optsearch inspect RUN_DIR list [--top N] [--all] [--json]`: the best candidates.

One row per distinct program (structural hash or behavioural fingerprint) unless `--all`: a
run re-finds its best program many times (mutations of dead code, cache hits), and ten copies
of one program would hide the runners-up. `seen` counts how often the search produced it.
"""

from __future__ import annotations

import argparse
import json

from optsearch.primitives.liveness import live_program
from optsearch.primitives.parser import parse
from optsearch.primitives.printer import format_program
from optsearch.search.distill.recognize import recognize
from optsearch.search.store import RunStore

NOT_AVAILABLE = "n/a"


class Recognizer:
    """Name of a program's live part, computed once per structural hash (the same live
    program has the same hash, so the answer can be shared)."""

    def __init__(self):
        self.names: dict[str, str] = {}

    def __call__(self, row) -> str:
        key = row["structural_hash"]
        if key not in self.names:
            self.names[key] = self._name(row["program"])
        return self.names[key]

    @staticmethod
    def _name(text: str) -> str:
        try:
            return recognize(live_program(parse(text))).name
        except Exception:  # noqa: BLE001 -- a recogniser bug must not break the table
            return NOT_AVAILABLE


def add_parser(views) -> None:
    p = views.add_parser("list", help="the top candidates by fitness")
    p.add_argument("--top", type=int, default=10, metavar="N", help="rows to show (default 10)")
    p.add_argument("--all", action="store_true",
                   help="list repeats of the same live program too")
    # SUPPRESS: an absent flag must not reset `inspect RUN --json list` to False.
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print one JSON object")
    p.set_defaults(view_func=run)


def top_rows(store: RunStore, n: int, distinct: bool = True, recognizer=None) -> list[dict]:
    """The table as dicts (the JSON form); `recognizer` lets callers share its cache."""
    recognizer = recognizer or Recognizer()
    out = []
    for row in store.ranked(distinct, k=max(n, 0)):
        program = parse(row["program"])
        live = live_program(program)
        out.append({"id": row["id"], "fitness": row["aggregate"],
                    "length": len(program.statements), "live_statements": len(live.statements),
                    "recognized": recognizer(row), "status": row["status"],
                    "source": row["source"], "seen": store.times_seen(row),
                    "structural_hash": row["structural_hash"], "program": row["program"],
                    "live_program": format_program(live)})
    return out


def format_table(rows: list[dict]) -> str:
    header = f"{'id':>6} {'fitness':>9} {'length':>6} {'live':>4} {'seen':>4}  {'status':9} name"
    lines = [header]
    for r in rows:
        lines.append(f"{r['id']:>6} {r['fitness']:>9.4f} {r['length']:>6} "
                     f"{r['live_statements']:>4} {r['seen']:>4}  {r['status']:9} "
                     f"{r['recognized']}")
    return "\n".join(lines)


def run(store: RunStore, args) -> int:
    rows = top_rows(store, args.top, distinct=not args.all)
    if args.json:
        print(json.dumps({"distinct": not args.all, "candidates": rows}, indent=2))
        return 0
    if not rows:
        print("no finished candidates yet")
        return 0
    print(format_table(rows))
    return 0
