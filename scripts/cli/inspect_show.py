"""`optsearch inspect RUN_DIR show ID [--json]`: one candidate in full.

The raw program (as the search holds it, dead statements included) and its live part, the
fitness per task and per seed, and the ancestry: the mutations that led from an initial
program to this one, oldest first.
"""

from __future__ import annotations

import argparse
import json

from optsearch.cli.errors import UserError
from optsearch.cli.inspect_list import Recognizer
from optsearch.cli.lineage import ancestry
from optsearch.primitives.liveness import live_program
from optsearch.primitives.parser import parse
from optsearch.primitives.printer import format_program
from optsearch.search.store import RunStore


def add_parser(views) -> None:
    p = views.add_parser("show", help="one candidate: programs, fitness per task, ancestry")
    p.add_argument("id", type=int, help="candidate id (see 'list')")
    p.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                   help="print one JSON object")
    p.set_defaults(view_func=run)


def candidate_info(store: RunStore, candidate_id: int, recognizer=None) -> dict:
    """Everything `show` prints, as one JSON-ready dict."""
    row = store.candidate(candidate_id)
    if row is None:
        raise UserError(f"{store.run_dir}: no candidate {candidate_id}")
    program = parse(row["program"])
    fitness = json.loads(row["fitness_json"]) if row["fitness_json"] else {}
    return {
        "id": row["id"], "status": row["status"], "fitness": row["aggregate"],
        "source": row["source"], "duplicate_of": row["duplicate_of"],
        "island": row["island"], "worker": row["worker"], "cost_s": row["cost_s"],
        "structural_hash": row["structural_hash"], "fingerprint": row["fingerprint"],
        "program": row["program"], "live_program": format_program(live_program(program)),
        "recognized": (recognizer or Recognizer())(row),
        "seeds": fitness.get("seeds", []), "message": fitness.get("message", ""),
        "tasks": fitness.get("tasks", {}),
        "ancestry": [{"id": r["id"], "parent_id": r["parent_id"], "mutation": r["mutation"],
                      "detail": r["detail"], "fitness": r["aggregate"], "status": r["status"]}
                     for r in ancestry(store, candidate_id)],
    }


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def task_lines(info: dict) -> list[str]:
    """Per task: metric and score means, then metric and score for each seed."""
    if not info["tasks"]:
        return ["  (no per-task results stored)"]
    seeds = info["seeds"]
    lines = []
    for name, task in info["tasks"].items():
        direction = "lower is better" if task.get("lower_is_better") else "higher is better"
        lines.append(f"  {name}: score {_number(task.get('score'))}, metric "
                     f"{_number(task.get('metric'))} ({direction}), status "
                     f"{task.get('status', '?')}")
        scores = task.get("seed_scores") or [None] * len(task.get("per_seed", []))
        for k, (metric, score) in enumerate(zip(task.get("per_seed", []), scores)):
            seed = seeds[k] if k < len(seeds) else k
            lines.append(f"    seed {seed}: metric {_number(metric)}  score {_number(score)}")
    return lines


def ancestry_lines(info: dict) -> list[str]:
    lines = []
    for step in info["ancestry"]:
        fitness = "-" if step["fitness"] is None else f"{step['fitness']:.4f}"
        lines.append(f"  #{step['id']:<7} {fitness:>8}  {step['detail']}")
    return lines


def format_info(info: dict) -> str:
    origin = ""
    if info["duplicate_of"] is not None:
        origin = f" (fitness taken from #{info['duplicate_of']}, {info['source']})"
    out = [(f"candidate {info['id']}: status {info['status']}, fitness "
           f"{_number(info['fitness'])}{origin}, recognised: {info['recognized']}"),
           f"structural hash {info['structural_hash']}, fingerprint {info['fingerprint']}"]
    if info["message"]:
        out.append(f"message: {info['message']}")
    out += ["", "program:", info["program"].rstrip("\n"), "",
            "live program:", info["live_program"].rstrip("\n"), "", "fitness per task:"]
    out += task_lines(info)
    n = len(info["ancestry"]) - 1
    out += ["", f"ancestry ({n} mutation{'' if n == 1 else 's'} from the initial program):"]
    out += ancestry_lines(info)
    return "\n".join(out)


def run(store: RunStore, args) -> int:
    info = candidate_info(store, args.id)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(format_info(info))
    return 0
