"""Seeded, machine-independent integers: what makes every engine, worker count and batch size agree."""

from __future__ import annotations

import hashlib


def stable_int(*parts) -> int:
    """A 63-bit integer from the parts, the same on every machine, process and run (unlike `hash`)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


class U64Set:
    """A set of 64-bit hashes of strings in about 8 bytes each (a Python set of strings costs ~100): a sorted
    numpy array plus a small buffer merged into it in bulk, so membership and insertion stay O(log n) amortised.

    For the sets that grow with a run (seed ids, exact-duplicate hashes). The array grows by doubling and is merged
    by sorting in place: a new array per merge (`np.union1d`) left the allocator holding ~90 bytes per key at 1.2M
    keys (`bench/scale.py --seed-file`), this holds at most 2 x 8. Two strings share a 64-bit hash with probability
    ~n^2 / 2^65: about 4e-8 for 1.2M strings."""

    BUFFER = 65536

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self._data = np.zeros(0, np.uint64)  # [:_size] sorted, the rest spare capacity
        self._size = 0
        self.buffer: set[int] = set()

    @property
    def sorted(self):
        return self._data[: self._size]

    @staticmethod
    def key(text: str) -> int:
        return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")

    def __contains__(self, text: str) -> bool:
        return self._has(self.key(text))

    def _has(self, key: int) -> bool:
        if key in self.buffer:
            return True
        keys = self.sorted
        i = int(self._np.searchsorted(keys, self._np.uint64(key)))
        return i < len(keys) and int(keys[i]) == key

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
        end = self._size + len(self.buffer)
        if end > len(self._data):
            grown = np.empty(max(end, 2 * len(self._data)), np.uint64)
            grown[: self._size] = self.sorted
            self._data = grown
        self._data[self._size : end] = np.fromiter(self.buffer, np.uint64, len(self.buffer))
        self._data[:end].sort()  # in place: no second array (keys are unique: the buffer holds only new ones)
        self._size = end
        self.buffer.clear()

    def __len__(self) -> int:
        return self._size + len(self.buffer)

    @property
    def nbytes(self) -> int:
        return self._data.nbytes + 8 * len(self.buffer)
