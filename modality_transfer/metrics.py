"""Gap metrics between synthetic and real image embeddings. Each docstring says which way is better.

All inputs are (n, dim) arrays of L2-normalised rows; paired metrics expect row i of one to pair
with row i of the other.
"""

from __future__ import annotations

import numpy as np

from .checks import check_embeddings, l2_normalize
from .errors import InputError

METRICS = {
    # name: True when higher is better
    "cos_paired": True,
    "r1": True,
    "r5": True,
    "r10": True,
    "r1_i2t": True,
    "centroid_gap": False,
    "frechet": False,
    "mmd": False,
    "two_sample_acc": False,  # closer to 0.5 is better; 0.5 is the floor for a fair classifier
    "semantic_rho": True,
}


def cos_paired(synthetic: np.ndarray, image: np.ndarray) -> float:
    """Mean cosine between each synthetic embedding and its real image. Higher is better."""
    return float((l2_normalize(synthetic) * l2_normalize(image)).sum(1).mean())


def recall_at_k(queries: np.ndarray, bank: np.ndarray, targets: np.ndarray, ks=(1, 5, 10)) -> dict[int, float]:
    """Share of queries whose target row in `bank` ranks in the top k by cosine. Higher is better."""
    sims = l2_normalize(queries) @ l2_normalize(bank).T  # (q, bank)
    target_sims = sims[np.arange(len(queries)), targets]
    ranks = (sims > target_sims[:, None]).sum(1)  # 0 = retrieved first; ties count in the query's favour
    return {k: float((ranks < k).mean()) for k in ks}


def centroid_gap(synthetic: np.ndarray, image: np.ndarray) -> float:
    """Distance between the synthetic and the real image centroids (Liang et al. 2022). Lower is better."""
    return float(np.linalg.norm(synthetic.mean(0) - image.mean(0)))


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to `a` and `b` (as in FID). Lower is better."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(A B) = sum sqrt(eig(sqrtA B sqrtA)), which is symmetric PSD and so stable.
    vals, vecs = np.linalg.eigh(cov_a)
    sqrt_a = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a), 0, None)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * cross)


def mmd_rbf(a: np.ndarray, b: np.ndarray) -> float:
    """Unbiased squared MMD with an RBF kernel at the median-heuristic bandwidth. Lower is better."""
    x = np.concatenate([a, b]).astype(np.float64)
    sq = np.maximum((x * x).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2 * x @ x.T, 0)
    off_diag = sq[~np.eye(len(x), dtype=bool)]
    bandwidth = np.median(off_diag) if np.median(off_diag) > 0 else 1.0
    k = np.exp(-sq / bandwidth)
    n, m = len(a), len(b)
    kxx, kyy, kxy = k[:n, :n], k[n:, n:], k[:n, n:]
    return float(
        (kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean()
    )


def two_sample_accuracy(a: np.ndarray, b: np.ndarray, *, folds: int = 5, seed: int = 0) -> float:
    """Cross-validated accuracy of a linear classifier telling `a` from `b`. 0.5 is perfect; 1.0 is worst."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x = np.concatenate([a, b])
    y = np.r_[np.zeros(len(a)), np.ones(len(b))]
    folds = max(2, min(folds, len(a), len(b)))
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return float(cross_val_score(LogisticRegression(C=1.0, max_iter=2000), x, y, cv=cv).mean())


def semantic_rho(source: np.ndarray, synthetic: np.ndarray) -> float:
    """Spearman correlation of the pairwise-similarity matrices of the sources and their synthetic
    embeddings: how much of the texts' geometry survives the transfer. Higher is better."""
    iu = np.triu_indices(len(source), k=1)
    s1 = (l2_normalize(source) @ l2_normalize(source).T)[iu]
    s2 = (l2_normalize(synthetic) @ l2_normalize(synthetic).T)[iu]
    r1, r2 = _ranks(s1), _ranks(s2)
    return float(np.corrcoef(r1, r2)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    ranks[order] = np.arange(len(x))
    return ranks


def gap_report(
    text: np.ndarray,
    synthetic: np.ndarray,
    image: np.ndarray,
    *,
    rows: np.ndarray | None = None,
    synthetic_bank: np.ndarray | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Every metric in `METRICS` for synthetic embeddings of `text[rows]` against `image`.

    Args:
        text: source text embeddings, (n, dim).
        synthetic: synthetic embeddings of `text[rows]`, (len(rows), dim).
        image: the real image bank, (n, dim), row-aligned with `text`; retrieval searches all of it.
        rows: the rows evaluated (a held-out fold); all rows when None.
        synthetic_bank: synthetic embeddings of all n texts, searched by image-to-text retrieval;
            `synthetic` (rows only) when None.
    """
    rows = np.arange(len(text)) if rows is None else np.asarray(rows)
    image = check_embeddings(image, "image embeddings")
    synthetic = check_embeddings(synthetic, "synthetic embeddings", dim=image.shape[1])
    if len(synthetic) != len(rows) or len(text) != len(image):
        raise InputError(f"row counts differ: {len(text)} texts, {len(image)} images, {len(synthetic)} synthetic")
    if len(rows) < 3:
        raise InputError(f"need at least 3 rows to measure the gap, got {len(rows)}")
    real = image[rows]
    t2i = recall_at_k(synthetic, image, rows)
    if synthetic_bank is None:
        i2t = recall_at_k(real, synthetic, np.arange(len(rows)), ks=(1,))
    else:
        i2t = recall_at_k(real, synthetic_bank, rows, ks=(1,))
    return {
        "cos_paired": cos_paired(synthetic, real),
        "r1": t2i[1],
        "r5": t2i[5],
        "r10": t2i[10],
        "r1_i2t": i2t[1],
        "centroid_gap": centroid_gap(synthetic, real),
        "frechet": frechet_distance(synthetic, real),
        "mmd": mmd_rbf(synthetic, real),
        "two_sample_acc": two_sample_accuracy(synthetic, real, seed=seed),
        "semantic_rho": semantic_rho(text[rows], synthetic),
    }
