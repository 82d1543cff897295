"""`optsearch export FILE|RUN_DIR -o OUT.py [--class-name NAME]`: a standalone torch optimizer.

A run directory is read through its `best.py` (the search store writes it). When the program is
recognised (`search.recognize`, if present) the class gets the optimizer's name and named
hyperparameters (`lr`, `betas`, `weight_decay`); otherwise numbered constants `c0, c1, ...`.
"""

from __future__ import annotations

import os
import re

from optsearch.cli.errors import UserError
from optsearch.cli.programs import read_program
from optsearch.primitives.export import export_source
from optsearch.search.distill.recognize import recognize


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="write a program as a standalone torch.optim.Optimizer")
    p.add_argument("file", help="program file, run directory, or a reference name such as 'lion'")
    p.add_argument("-o", "--output", required=True, metavar="OUT.py", help="file to write")
    p.add_argument("--class-name", default=None,
                   help="class name (default: the recognised optimizer's name, else "
                        "DiscoveredOptimizer)")
    p.set_defaults(func=run)


def program_file(spec: str) -> str:
    """A program file, or `best.py` inside a run directory."""
    if not os.path.isdir(spec):
        return spec
    best = os.path.join(spec, "best.py")
    if not os.path.isfile(best):
        raise UserError(f"{spec}: a run directory needs a best.py (none found)")
    return best


def recognize_or_none(program):
    """The recognised known optimizer, or None for a new one (a generic class name)."""
    recognition = recognize(program)
    return None if getattr(recognition, "name", "new") == "new" else recognition


def default_class_name(recognition) -> str:
    if recognition is None:
        return "DiscoveredOptimizer"
    name = re.sub(r"\W", "", str(recognition.name))  # "SGD-M" -> "SGDM"
    return name if name.isidentifier() and not name.startswith("_") else "DiscoveredOptimizer"


def run(args) -> int:
    path = program_file(args.file)
    program = read_program(path)
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
    what = recognition.name if recognition is not None else "generic (numbered constants)"
    print(f"wrote {args.output}: class {class_name} ({what})")
    return 0
