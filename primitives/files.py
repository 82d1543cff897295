"""Program files: bytes on disk -> a checked Program. The one reader that the command line and
the evaluator's target mode share; a program file is parsed, never executed."""

from __future__ import annotations

from optsearch.primitives.analysis import check
from optsearch.primitives.parser import MAX_BYTES, decode, parse
from optsearch.primitives.program import Program, ProgramError


def parse_checked(text: str, source: str, validate: bool = True) -> Program:
    """Parse (and by default check) program text; a ProgramError names `source` as its file."""
    try:
        program = parse(text)
        if validate:
            check(program)
    except ProgramError as exc:
        exc.filename = source
        raise
    return program


def read_program_file(path: str, validate: bool = True) -> Program:
    """The program in the file at `path`. OSError (unreadable) and ProgramError (too large,
    not UTF-8, not a valid program; `filename` set to `path`) are the caller's to report."""
    with open(path, "rb") as fh:
        data = fh.read(MAX_BYTES + 1)  # one byte more than allowed: "too large" is detected
    try:
        text = decode(data)
    except ProgramError as exc:
        exc.filename = path
        raise
    return parse_checked(text, path, validate)
