"""The `optsearch` command line: one sub-command per module `optsearch.cli.cmd_<name>`.

Every sub-command module exposes `add_parser(subparsers)` and `run(args) -> int`. Errors the
user can fix (a bad program, a missing run directory) are `UserError`/`ProgramError` and
become one line on stderr with exit status 2 -- never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from optsearch.cli import (
    cmd_check,
    cmd_evaluate,
    cmd_export,
    cmd_inspect,
    cmd_resume,
    cmd_run,
    cmd_search,
    cmd_simplify,
)
from optsearch.cli.errors import UserError, exit_status
from optsearch.primitives.program import ProgramError

COMMANDS = (cmd_check, cmd_evaluate, cmd_search, cmd_resume, cmd_inspect, cmd_simplify,
            cmd_export, cmd_run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optsearch",
        description="Search optimizer programs, inspect them, export them as torch optimizers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return exit_status(_dispatch, args)


def _dispatch(args) -> int:
    try:
        return args.func(args)
    except ProgramError as exc:  # the program file's own FILE:LINE: message
        name = getattr(exc, "filename", None) or getattr(args, "file", "<program>")
        raise UserError(exc.one_line(name).removeprefix("error: ")) from None


if __name__ == "__main__":
    sys.exit(main())
