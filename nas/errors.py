"""Errors the CLI reports as one line (no traceback) with a non-zero exit."""


class NasError(Exception):
    """Bad input a user can fix: the message says what is wrong and how to fix it."""
