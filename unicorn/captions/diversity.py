"""Diversity figures of a set of captions: distinct-n, type/token ratio, mean pairwise embedding distance."""

from __future__ import annotations

import numpy as np

from .filters import WORD


def distinct_n(texts: list[str], n: int) -> float:
    """Unique n-grams over all n-grams, across the whole set. Higher is more diverse."""
    grams = [
        tuple(w[i : i + n])
        for w in ([x.lower() for x in WORD.findall(t)] for t in texts)
        for i in range(len(w) - n + 1)
    ]
    return len(set(grams)) / len(grams) if grams else 0.0


def type_token_ratio(texts: list[str]) -> float:
    words = [w.lower() for t in texts for w in WORD.findall(t)]
    return len(set(words)) / len(words) if words else 0.0


def mean_pairwise_distance(embeddings: np.ndarray, *, sample: int = 2000, seed: int = 0) -> float:
    """Mean cosine distance between distinct rows (of a seeded sample of at most `sample` rows)."""
    n = len(embeddings)
    if n < 2:
        return 0.0
    if n > sample:
        embeddings = embeddings[np.random.default_rng(seed).choice(n, sample, replace=False)]
        n = sample
    sims = embeddings @ embeddings.T
    return float(1 - (sims.sum() - np.trace(sims)) / (n * (n - 1)))


def diversity(texts: list[str], embeddings: np.ndarray | None = None) -> dict[str, float]:
    out = {
        "count": len(texts),
        "distinct_2": round(distinct_n(texts, 2), 4),  # distinct-1 is the type/token ratio below
        "distinct_3": round(distinct_n(texts, 3), 4),
        "type_token_ratio": round(type_token_ratio(texts), 4),
        "mean_words": round(float(np.mean([len(t.split()) for t in texts])), 2) if texts else 0.0,
    }
    if embeddings is not None:
        out["mean_pairwise_distance"] = round(mean_pairwise_distance(embeddings), 4)
    return out
