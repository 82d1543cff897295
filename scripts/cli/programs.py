"""Read a program for the CLI -- from a file (bytes -> checked Program) or as the winner of a
run directory; errors carry where the program came from."""

from __future__ import annotations

import os

from optsearch.cli.errors import UserError
from optsearch.primitives.analysis import check
from optsearch.primitives.parser import MAX_BYTES, decode, parse
from optsearch.primitives.program import Program, ProgramError
from optsearch.primitives.reference import REFERENCE_NAMES, reference_path
from optsearch.search.store import DatabaseError, RunStore


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


def read_run_winner(run_dir: str) -> tuple[Program, str]:
    """A run directory's winner (`RunStore.winner`: what simplify, export and the main job
    all take) as a checked program, and a description of where it came from."""
    try:
        store = RunStore.open(run_dir, readonly=True)
    except FileNotFoundError as exc:
        raise UserError(str(exc)) from None
    try:
        winner = store.winner()
    except DatabaseError as exc:
        raise UserError(f"{run_dir}: cannot read the run database ({exc})") from None
    finally:
        store.close()
    if winner is None:
        raise UserError(f"{run_dir}: no program of this run finished successfully")
    source = f"{run_dir}: {winner.describe()}"
    try:
        program = parse(winner.program)
        check(program)
    except ProgramError as exc:
        exc.filename = source
        raise
    return program, source
