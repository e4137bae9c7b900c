"""Seeded, machine-independent integers: what makes every engine, worker count and batch size agree."""

from __future__ import annotations

import hashlib


def stable_int(*parts) -> int:
    """A 63-bit integer from the parts, the same on every machine, process and run (unlike `hash`)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big") >> 1
