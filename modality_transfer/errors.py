"""Errors raised for bad input, so callers (the CLI) can turn them into one-line messages."""


class InputError(ValueError):
    """Bad user input: wrong shapes, non-finite values, corrupt projector folders."""
