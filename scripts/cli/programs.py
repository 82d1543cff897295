"""Read a program from a file for the CLI: bytes -> checked Program, errors carry the file name."""

from __future__ import annotations

import os

from optsearch.cli.errors import UserError
from optsearch.primitives.analysis import check
from optsearch.primitives.parser import MAX_BYTES, decode, parse
from optsearch.primitives.program import Program, ProgramError
from optsearch.primitives.reference import REFERENCE_NAMES, reference_path


def resolve_path(spec: str) -> str:
    """A file path, or the name of a shipped reference program (e.g. 'lion')."""
    if not os.path.exists(spec) and spec in REFERENCE_NAMES:
        return str(reference_path(spec))
    return spec


def read_program(spec: str, validate: bool = True) -> Program:
    path = resolve_path(spec)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise UserError(f"{spec}: cannot read: {exc.strerror}") from None
    try:
        program = parse(decode(data))
        if validate:
            check(program)
    except ProgramError as exc:
        exc.filename = spec
        raise
    return program
