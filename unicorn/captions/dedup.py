"""Dedup: exact (by a hash of the normalised text) and semantic (faiss inner product over unit embeddings)."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from ..errors import InputError

_PUNCT = re.compile(r"[^\w\s]")


def normalised_hash(text: str) -> str:
    """Hash of the lower-cased text without punctuation or extra spaces."""
    return hashlib.sha1(" ".join(_PUNCT.sub(" ", text.lower()).split()).encode()).hexdigest()


def exact_duplicates(texts: list[str], seen: set[str] | None = None) -> list[bool]:
    """True for each text whose normalised form appeared earlier (or is in `seen`, which is updated)."""
    seen = set() if seen is None else seen
    out = []
    for t in texts:
        h = normalised_hash(t)
        out.append(h in seen)
        seen.add(h)
    return out


class SemanticDedup:
    """Keeps a text unless its embedding lies within `threshold` cosine of one already kept (first one wins)."""

    def __init__(self, dim: int, threshold: float = 0.95) -> None:
        import faiss

        if not 0 < threshold <= 1:
            raise InputError(f"dedup threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.index = faiss.IndexFlatIP(dim)

    def duplicates(self, embeddings: np.ndarray) -> list[bool]:
        """Flags for each row, in order; kept rows join the index, so later batches are checked against them."""
        out = []
        for row in np.ascontiguousarray(embeddings, dtype=np.float32):
            row = row[None]
            dup = False
            if self.index.ntotal:
                sims, _ = self.index.search(row, 1)
                dup = bool(sims[0, 0] >= self.threshold)
            if not dup:
                self.index.add(row)
            out.append(dup)
        return out
