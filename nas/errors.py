"""Errors the CLI reports as one line (no traceback) with a non-zero exit."""


class NasError(Exception):
    """Bad input a user can fix: the message says what is wrong and how to fix it."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with a command's own line on what was saved and how to go on (exit 130)."""
