"""Read a program for the CLI -- from a file (bytes -> checked Program) or as the winner of a
run directory; errors carry where the program came from."""

from __future__ import annotations

import os

from optsearch.cli.errors import UserError
from optsearch.primitives.files import parse_checked, read_program_file
from optsearch.primitives.program import Program, ProgramError
from optsearch.primitives.reference import REFERENCE_NAMES, reference_path
from optsearch.search.store import DatabaseError, RunStore


def resolve_path(spec: str) -> str:
    """A file path, or the name of a shipped reference program (e.g. 'lion')."""
    if not os.path.exists(spec) and spec in REFERENCE_NAMES:
        return str(reference_path(spec))
    return spec


def read_program(spec: str, validate: bool = True) -> Program:
    """The program named by `spec` (a file or a shipped reference name); errors name `spec`
    as the user wrote it."""
    try:
        return read_program_file(resolve_path(spec), validate)
    except OSError as exc:
        raise UserError(f"{spec}: cannot read: {exc.strerror}") from None
    except ProgramError as exc:
        exc.filename = spec
        raise


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
    return parse_checked(winner.program, source), source
