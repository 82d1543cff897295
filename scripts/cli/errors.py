"""Errors a user can fix; the CLI prints them as one line and exits with status 2."""

from __future__ import annotations

import sys


class UserError(Exception):
    """A message for the user, already in the form `FILE:LINE: message` or plain."""


def exit_status(run, *args) -> int:
    """run(*args) as a command: a UserError is one line `error: ...` and status 2, Ctrl-C is
    130, a reader that left the pipe (`... | head`) is not an error. Never a traceback for
    what the user can fix."""
    try:
        return int(run(*args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        sys.stderr.close()
        return 0
