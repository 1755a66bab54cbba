"""Errors a user can cause. The command line prints them as one line and exits with code 2."""


class UserError(Exception):
    """A mistake in the input (a path, a flag, a file) that the user can fix; the message says what and where."""
