"""The library's user-facing error: bad input or a missing resource, shown as one line by the CLI."""

from modality_transfer.errors import InputError

__all__ = ["InputError"]
