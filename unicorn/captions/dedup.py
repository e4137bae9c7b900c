"""Dedup: exact (by a hash of the normalised text) and semantic (cosine over unit embeddings), at any run size.

`Deduplicator` decides, batch by batch and in row order, which rows repeat an earlier kept row. Its cost per row
stays bounded as the run grows: exact duplicates are 8-byte hashes in a sorted array (`U64Set`), and semantic
duplicates are searched in an inverted-file index (faiss IVF) whose coarse centroids are the first `nlist` kept
rows themselves, so no training step and no randomness: the index is a function of the kept rows in order.
Until `nlist` rows are kept the search is exact (a flat index of at most `nlist` rows, the same cost as the
coarse step after it).

Approximate search only misses, never invents: a row is rejected only when the inner product with a stored kept
row (computed from that row's vector, not estimated) is at or above the threshold. Within a batch, rows are
checked against the batch's earlier kept rows exactly. Vectors are rounded to float16 before they are used, so the
float16 vectors a run stores per shard rebuild exactly the same index on resume.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import InputError
from ..hashing import U64Set

_PUNCT = re.compile(r"[^\w\s]")


def normalised_text(text: str) -> str:
    """The lower-cased text without punctuation or extra spaces: what an exact duplicate shares."""
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def exact_duplicates(texts: list[str], seen: U64Set | None = None) -> list[bool]:
    """True for each text whose normalised form appeared earlier (or is in `seen`, which is updated): the same test
    `Deduplicator` makes."""
    seen = U64Set() if seen is None else seen
    return [not seen.add(normalised_text(t)) for t in texts]


class SemanticIndex:
    """Kept unit vectors, searched for the best inner product: exact up to `nlist` rows, IVF beyond.

    Cost per search: `nlist` centroid products plus `nprobe` lists of about n / nlist rows each, so it stays
    within about 2x of its start until n reaches nlist^2 / nprobe (2M rows at the defaults). Memory: 2 bytes
    per dimension per kept row (float16 codes) plus the centroids."""

    def __init__(self, dim: int, *, nlist: int = 4096, nprobe: int = 16) -> None:
        import faiss

        if nlist < 1 or not 1 <= nprobe <= nlist:
            raise InputError(f"dedup index needs nlist >= 1 and 1 <= nprobe <= nlist, got {nlist}, {nprobe}")
        self.dim, self.nlist, self.nprobe = dim, nlist, nprobe
        self._faiss = faiss
        self.index = faiss.IndexFlatIP(dim)  # exact until nlist rows are kept
        self.ivf = False

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    @property
    def nbytes(self) -> int:
        per_row = 2 * self.dim if self.ivf else 4 * self.dim
        return self.ntotal * per_row + (self.nlist * self.dim * 4 if self.ivf else 0)

    def best(self, x: np.ndarray) -> np.ndarray:
        """The best inner product of each row of `x` with a kept row (-inf where none is found)."""
        if not self.ntotal:
            return np.full(len(x), -np.inf, np.float32)
        sims, ids = self.index.search(x, 1)
        return np.where(ids[:, 0] >= 0, sims[:, 0], -np.inf).astype(np.float32)

    def add(self, x: np.ndarray) -> None:
        """Keep these rows; at batch ends, the flat index becomes an IVF once it holds `nlist` rows."""
        if len(x):
            self.index.add(x)
        if not self.ivf and self.ntotal >= self.nlist:
            self._to_ivf()

    def _to_ivf(self) -> None:
        faiss = self._faiss
        kept = self.index.reconstruct_n(0, self.ntotal)
        quantizer = faiss.IndexFlatIP(self.dim)
        quantizer.add(kept[: self.nlist])  # the first nlist kept rows are the centroids: no training, no seed
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, self.dim, self.nlist, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
        )
        ivf.is_trained = True  # fp16 codes need no training; the quantizer is complete
        ivf.nprobe = self.nprobe
        ivf.add(kept)
        self.index, self.quantizer, self.ivf = ivf, quantizer, True


class Deduplicator:
    """Exact and semantic dedup with explicit state: `decide` a batch in row order, `remember` kept rows."""

    def __init__(self, dim: int, threshold: float = 0.95, *, nlist: int = 4096, nprobe: int = 16) -> None:
        if not 0 < threshold <= 1:
            raise InputError(f"dedup threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.seen = U64Set()  # normalised texts of kept rows
        self.semantic = SemanticIndex(dim, nlist=nlist, nprobe=nprobe)

    @staticmethod
    def vectors(embeddings) -> np.ndarray:
        """Rows as float32 values of float16 numbers: what the run stores, so a resume rebuilds them exactly."""
        return np.ascontiguousarray(np.asarray(embeddings, np.float16), dtype=np.float32)

    def decide(self, texts: list[str], embeddings) -> list[str | None]:
        """For each row in order: 'exact_duplicate', 'semantic_duplicate' (of a kept row, earlier in this batch or
        in an earlier one) or None (kept; it joins the state)."""
        x = self.vectors(embeddings)
        best = self.semantic.best(x)  # against earlier batches, one search for the whole batch
        within = x @ x.T  # (m, m): against this batch's earlier rows, exactly
        kept: list[int] = []
        out: list[str | None] = []
        for i, text in enumerate(texts):
            key = normalised_text(text)
            if key in self.seen:
                out.append("exact_duplicate")
            elif best[i] >= self.threshold or (kept and within[i, kept].max() >= self.threshold):
                out.append("semantic_duplicate")
            else:
                self.seen.add(key)
                kept.append(i)
                out.append(None)
        self.semantic.add(x[kept])
        return out

    def remember(self, texts: list[str], embeddings) -> None:
        """Add rows a finished shard kept, as `decide` would have (on resume)."""
        for text in texts:
            self.seen.add(normalised_text(text))
        self.semantic.add(self.vectors(embeddings))

    @property
    def nbytes(self) -> int:
        return self.seen.nbytes + self.semantic.nbytes
