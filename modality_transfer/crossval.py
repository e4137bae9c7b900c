"""Cross-validated comparison of every projector on paired text/image embeddings."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from tqdm.auto import tqdm

from .checks import check_paired
from .errors import InputError
from .factory import create_projector, list_projectors
from .metrics import METRICS, gap_report


def kfold_rows(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """Seeded split of range(n) into `folds` disjoint held-out row sets."""
    if not 2 <= folds <= n // 3:
        raise InputError(f"folds must be in [2, {n // 3}] for {n} rows, got {folds}")
    return np.array_split(np.random.default_rng(seed).permutation(n), folds)


def gap_bench(
    text: np.ndarray,
    image: np.ndarray,
    *,
    methods: Iterable[str] | None = None,
    folds: int = 5,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Fit each method on the training folds only and measure it on each held-out fold.

    Retrieval searches all n images (text to image) and all n synthetic embeddings made by the
    fold's projector (image to text). Metrics are averaged over folds.

    Returns:
        {"n", "dim", "folds", "seed", "methods": {method: {metric: value}}}
    """
    text, image = check_paired(text, image)
    methods = list(methods or list_projectors())
    splits = kfold_rows(len(text), folds, seed)
    results: dict[str, dict[str, float]] = {}
    bar = tqdm(total=len(methods) * folds, desc="gap bench", unit="fit", disable=not progress)
    for method in methods:
        per_fold = []
        for k, held_out in enumerate(splits):
            train = np.concatenate([s for j, s in enumerate(splits) if j != k])
            projector = create_projector(method).fit(text[train], image[train])
            synthetic = projector.transform(text)
            per_fold.append(
                gap_report(text, synthetic[held_out], image, rows=held_out, synthetic_bank=synthetic, seed=seed)
            )
            bar.update()
        results[method] = {m: float(np.mean([f[m] for f in per_fold])) for m in METRICS}
    bar.close()
    return {"n": len(text), "dim": text.shape[1], "folds": folds, "seed": seed, "methods": results}


def format_table(report: dict) -> str:
    """A plain-text table of a `gap_bench` report, best value per column marked with '*'."""
    names = list(METRICS)
    rows = report["methods"]
    best = {}
    for m, higher in METRICS.items():
        values = [r[m] for r in rows.values()]
        best[m] = min(values, key=lambda v: abs(v - 0.5)) if m == "two_sample_acc" else (max if higher else min)(values)
    head = f"{'method':<12}" + "".join(f"{n:>15}" for n in names)
    arrows = f"{'':<12}" + "".join(
        f"{'(~0.5)' if n == 'two_sample_acc' else '(higher)' if METRICS[n] else '(lower)':>15}" for n in names
    )
    lines = [f"n={report['n']} dim={report['dim']} folds={report['folds']}", head, arrows]
    for method, r in rows.items():
        cells = "".join(f"{r[n]:>14.3f}{'*' if r[n] == best[n] else ' '}" for n in names)
        lines.append(f"{method:<12}{cells}")
    return "\n".join(lines)
