"""`optsearch check FILE [--json]`: parse, validate, and show the program's analysis."""

from __future__ import annotations

import json

from optsearch.cli.programs import read_program
from optsearch.primitives.hashing import fingerprint, structural_hash
from optsearch.primitives.liveness import live_indices, live_program, live_state_slots
from optsearch.primitives.printer import format_program, format_statement


def add_parser(sub) -> None:
    p = sub.add_parser("check", help="parse and validate a program; show liveness and hashes")
    p.add_argument("file", help="program file, or a reference name such as 'lion'")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def summarize(program) -> dict:
    live = live_indices(program)
    slots = live_state_slots(program)
    return {
        "canonical": format_program(program),
        "live_program": format_program(live_program(program)),
        "structural_hash": structural_hash(program),
        "fingerprint": fingerprint(program),
        "live_statements": sorted(i + 1 for i in live),
        "dead_statements": [i + 1 for i in range(len(program.statements)) if i not in live],
        "live_state_slots": [program.slots[s] for s in sorted(slots)],
        "n_state_slots": program.n_slots,
    }


def run(args) -> int:
    program = read_program(args.file)
    info = summarize(program)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"ok: {args.file}")
    for i, stmt in enumerate(program.statements):
        mark = "live" if i + 1 in info["live_statements"] else "dead"
        print(f"  {i + 1:3d} [{mark}] {format_statement(stmt)}")
    print(f"  return {', '.join(program.returns)}")
    print(f"live state slots: {', '.join(info['live_state_slots']) or '(none)'} "
          f"of {program.n_slots}")
    print(f"structural hash:  {info['structural_hash']}")
    print(f"fingerprint:      {info['fingerprint']}")
    return 0
