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
from optsearch.cli.errors import UserError
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
    try:
        return int(args.func(args) or 0)
    except ProgramError as exc:
        print(exc.one_line(getattr(exc, "filename", None) or getattr(args, "file", "<program>")),
              file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `optsearch ... | head`: the reader left; not an error of ours
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
