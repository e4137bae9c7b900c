"""A picture of the gap: a 2-D PCA of text, image and synthetic clouds, before and after transfer."""

from __future__ import annotations

import os

import numpy as np


def plot_gap(text: np.ndarray, image: np.ndarray, synthetic: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    """Save a PNG: one panel per entry of `synthetic` (e.g. identity = before, a projector = after).

    The PCA is fitted on text and image together, so every panel shares one frame.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    both = np.concatenate([text, image]).astype(np.float64)
    mean = both.mean(0)
    _, _, vt = np.linalg.svd(both - mean, full_matrices=False)
    proj = vt[:2].T  # (dim, 2)

    def xy(a):
        return (a - mean) @ proj

    fig, axes = plt.subplots(1, len(synthetic), figsize=(4.2 * len(synthetic), 4.2), squeeze=False)
    for ax, (name, synth) in zip(axes[0], synthetic.items(), strict=True):
        for data, label, colour in (
            (text, "text", "tab:blue"),
            (image, "image", "tab:red"),
            (synth, f"synthetic ({name})", "tab:green"),
        ):
            p = xy(data)
            ax.scatter(p[:, 0], p[:, 1], s=6, alpha=0.45, color=colour, label=label)
            c = p.mean(0)
            ax.scatter([c[0]], [c[1]], s=120, marker="X", color=colour, edgecolor="black")
        gap = np.linalg.norm(synth.mean(0) - image.mean(0))
        ax.set_title(f"{name}: centroid gap {gap:.3f}")
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
        ax.legend(loc="best", fontsize=7)
    fig.suptitle("Modality gap: text, real image and synthetic image embeddings (PCA)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
