"""Errors a user can fix; the CLI prints them as one line and exits with status 2."""


class UserError(Exception):
    """A message for the user, already in the form `FILE:LINE: message` or plain."""
