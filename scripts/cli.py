"""The `optsearch` command line: one sub-command per module `scripts/cmd_<name>.py`.

Every sub-command module exposes `add_parser(subparsers)` and `run(args) -> int`. Errors the
user can fix (a bad program, a missing run directory) are `UserError`/`ProgramError` and
become one line on stderr with exit status 2 -- never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from primitives.program import ProgramError
from scripts.errors import UserError

COMMANDS = ("check", "evaluate", "search", "resume", "inspect", "simplify", "export")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optsearch",
        description="Search optimizer programs, inspect them, export them as torch optimizers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"scripts.cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"scripts.cmd_{name}":
                raise
            continue  # sub-command not built yet in this checkout
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
