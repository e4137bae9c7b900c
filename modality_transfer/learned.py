"""The project's own paired projector: a spectral split of the image space.

Why: on real CLIP pairs the paired cosine is carried by the few high-variance image directions,
which a ridge map predicts well from 400 pairs, while text-to-image retrieval is carried by the
many low-variance directions, where any fitted map overfits and the raw centred text is best. So
the map predicts the top-`rank` image principal coordinates by ridge, keeps the centred text in
the complement (scaled by `detail`), and adds the image mean.
"""

from __future__ import annotations

import numpy as np

from .base import Projector
from .errors import InputError
from .methods import _ridge


class Learned(Projector):
    """Ridge in the top image principal subspace + raw centred text elsewhere (this project; paired)."""

    name = "learned"
    data = "paired"

    def __init__(self, *, rank: int = 16, coarse: float = 1.5, detail: float = 1.0, alpha: float = 1.0) -> None:
        if rank < 1:
            raise InputError(f"learned rank must be >= 1, got {rank}")
        if coarse < 0 or detail < 0 or alpha < 0:
            raise InputError(f"learned coarse, detail and alpha must be >= 0, got {coarse}, {detail}, {alpha}")
        super().__init__()
        self.params = dict(rank=int(rank), coarse=float(coarse), detail=float(detail), alpha=float(alpha))

    def state_shapes(self, dim):
        rank = min(self.params["rank"], dim)
        return {"text_mean": (dim,), "image_mean": (dim,), "basis": (dim, rank), "weight": (dim, rank)}

    def _fit(self, text, image):
        mt, mi = text.mean(0), image.mean(0)
        rank = min(self.params["rank"], text.shape[1])
        centred = (image - mi).astype(np.float64)
        _, vecs = np.linalg.eigh(centred.T @ centred)
        basis = vecs[:, ::-1][:, :rank]  # (dim, rank): top image principal directions
        weight = _ridge(text - mt, centred @ basis, self.params["alpha"])  # (dim, rank)
        return {"text_mean": mt, "image_mean": mi, "basis": basis, "weight": weight}

    def _transform(self, x, start):
        s, p = self.state, self.params
        u = x - s["text_mean"]
        coarse = (u @ s["weight"]) @ s["basis"].T  # predicted high-variance part
        detail = u - (u @ s["basis"]) @ s["basis"].T  # centred text outside that subspace
        return s["image_mean"] + p["coarse"] * coarse + p["detail"] * detail
