"""Seeded, machine-independent integers: what makes every engine, worker count and batch size agree."""

from __future__ import annotations

import hashlib


def stable_int(*parts) -> int:
    """A 63-bit integer from the parts, the same on every machine, process and run (unlike `hash`)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


class U64Set:
    """A set of 64-bit hashes of strings in about 8 bytes each (a Python set of strings costs ~100): a sorted
    numpy array plus a small buffer merged into it in bulk, so membership and insertion stay O(log n) amortised.

    For the sets that grow with a run (seed ids, exact-duplicate hashes). Two strings share a 64-bit hash with
    probability ~n^2 / 2^65: about 4e-8 for 1.2M strings."""

    BUFFER = 65536

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self.sorted = np.zeros(0, np.uint64)
        self.buffer: set[int] = set()

    @staticmethod
    def key(text: str) -> int:
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")

    def __contains__(self, text: str) -> bool:
        return self._has(self.key(text))

    def _has(self, key: int) -> bool:
        if key in self.buffer:
            return True
        i = int(self._np.searchsorted(self.sorted, self._np.uint64(key)))
        return i < len(self.sorted) and int(self.sorted[i]) == key

    def add(self, text: str) -> bool:
        """Add `text`; False if it was already there."""
        key = self.key(text)
        if self._has(key):
            return False
        self.buffer.add(key)
        if len(self.buffer) >= self.BUFFER:
            self._merge()
        return True

    def _merge(self) -> None:
        np = self._np
        self.sorted = np.union1d(self.sorted, np.fromiter(self.buffer, np.uint64, len(self.buffer)))
        self.buffer.clear()

    def __len__(self) -> int:
        return len(self.sorted) + len(self.buffer)

    @property
    def nbytes(self) -> int:
        return self.sorted.nbytes + 8 * len(self.buffer)
