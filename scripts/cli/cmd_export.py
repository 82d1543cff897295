"""`optsearch export FILE|RUN_DIR -o OUT.py [--class-name NAME]`: a standalone torch optimizer.

A run directory gives its winner (`RunStore.winner`: the best program of the last funnel
stage, else the best search fitness -- what `optsearch simplify` takes). When the program is
recognised (`search.recognize`, if present) the class gets the optimizer's name and named
hyperparameters (`lr`, `betas`, `weight_decay`); otherwise numbered constants `c0, c1, ...`.
"""

from __future__ import annotations

import os

from optsearch.cli.errors import UserError
from optsearch.cli.programs import read_program, read_run_winner
from optsearch.primitives.export import default_class_name, export_source
from optsearch.search.distill.recognize import recognize


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a program as a standalone torch.optim.Optimizer")
    p.add_argument("file", help="program file, run directory, or a reference name such as 'lion'")
    p.add_argument("-o", "--output", required=True, metavar="OUT.py", help="file to write")
    p.add_argument("--class-name", default=None,
                   help="class name (default: the recognised optimizer's name, else "
                        "DiscoveredOptimizer)")
    p.set_defaults(func=run)


def input_program(spec: str):
    """A program file or reference name, or the winner of a run directory."""
    if os.path.isdir(spec):
        return read_run_winner(spec)[0]
    return read_program(spec)


def recognize_or_none(program):
    """The recognised known optimizer, or None for a new one (a generic class name)."""
    recognition = recognize(program)
    return None if getattr(recognition, "name", "new") == "new" else recognition


def run(args) -> int:
    program = input_program(args.file)
    recognition = recognize_or_none(program)
    class_name = args.class_name or default_class_name(recognition)
    try:
        source = export_source(program, class_name=class_name, recognition=recognition)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    try:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(source)
    except OSError as exc:
        raise UserError(f"{args.output}: cannot write: {exc.strerror}") from None
    what = recognition.label if recognition is not None else "generic (numbered constants)"
    print(f"wrote {args.output}: class {class_name} ({what})")
    return 0
