"""Text-to-image projectors from the modality-gap literature, each a small closed-form fit.

Inputs and outputs are L2-normalised rows; `Projector` normalises before and after `_transform`.
"""

from __future__ import annotations

import numpy as np

from .base import Projector
from .errors import InputError


class Identity(Projector):
    """The raw text embedding (no transfer): the baseline every method is measured against."""

    name = "identity"

    def _transform(self, x: np.ndarray, start: int) -> np.ndarray:
        return x


class Center(Projector):
    """Subtract the text mean and renormalise (C3's "collapse" step, Zhang et al. 2024). Unicorn's released code
    subtracts the same mean but does not renormalise: that is `unicorn_released`."""

    name = "center"

    def state_shapes(self, dim: int) -> dict[str, tuple[int, ...]]:
        return {"text_mean": (dim,)}

    def _fit(self, text, image):
        return {"text_mean": text.mean(0)}

    def _transform(self, x, start):
        return x - self.state["text_mean"]


class MeanShift(Projector):
    """u - mean_text + mean_image, renormalised (the Unicorn paper's formula, Sec. 3.3; unpaired statistics). The
    released code adds no image mean and does not renormalise: that is `unicorn_released`."""

    name = "mean_shift"
    data = "unpaired"

    def state_shapes(self, dim):
        return {"text_mean": (dim,), "image_mean": (dim,)}

    def _fit(self, text, image):
        return {"text_mean": text.mean(0), "image_mean": image.mean(0)}

    def _transform(self, x, start):
        return x - self.state["text_mean"] + self.state["image_mean"]


class UnicornReleased(Projector):
    """Stage 3 exactly as Unicorn's released code does it (`data/embed_mean.py`, Yu-xm/Unicorn): each text embedding
    L2-normalised, minus the mean normalised text embedding of the fitting set; no image mean is added and the
    result is not renormalised (its norm is below 1). Fitted on text alone."""

    name = "unicorn_released"
    renormalise = False

    def state_shapes(self, dim):
        return {"text_mean": (dim,)}

    def _fit(self, text, image):
        # the released script sums float32 embeddings and divides by the count
        return {"text_mean": text.astype(np.float32).sum(0) / np.float32(len(text))}

    def _transform(self, x, start):
        return x - self.state["text_mean"]


class Noise(Projector):
    """Gaussian noise of std `sigma` after normalisation, renormalised (CapDec; C3 "corrupt").

    A training-time augmentation: the same `seed` and row index always give the same noise.
    """

    name = "noise"

    def __init__(self, *, sigma: float = 0.126, seed: int = 0) -> None:
        if not 0 <= sigma <= 10:
            raise InputError(f"noise sigma must be in [0, 10], got {sigma}")
        super().__init__()
        self.params = dict(sigma=float(sigma), seed=int(seed))

    BLOCK = 1024

    def _transform(self, x, start):
        # Noise is drawn in fixed blocks of rows seeded by (seed, block), so a row's noise does not
        # depend on how the input was chunked.
        first, last = start // self.BLOCK, (start + len(x) - 1) // self.BLOCK
        blocks = [
            np.random.default_rng([self.params["seed"], b]).standard_normal((self.BLOCK, x.shape[1]), dtype=np.float32)
            for b in range(first, last + 1)
        ]
        offset = start - first * self.BLOCK
        return x + self.params["sigma"] * np.concatenate(blocks)[offset : offset + len(x)]


class ReAlign(Projector):
    """ReAlign (Yu et al. 2026, arXiv 2602.07026, the alignment behind their ReVision training recipe), unpaired:
    anchor alignment (text mean out, image mean in), trace alignment (the residual scaled so its total variance
    matches the images'), then centroid alignment (after projecting onto the sphere, the spherical mean moved onto
    the image mean)."""

    name = "realign"
    data = "unpaired"

    def state_shapes(self, dim):
        return {"text_mean": (dim,), "image_mean": (dim,), "scale": (1,), "sphere_mean": (dim,)}

    def _fit(self, text, image):
        mt, mi = text.mean(0), image.mean(0)
        # trace(C) is the mean squared distance to the centroid.
        scale = np.sqrt(((image - mi) ** 2).sum(1).mean() / ((text - mt) ** 2).sum(1).mean())
        state = {"text_mean": mt, "image_mean": mi, "scale": np.array([scale])}
        state["sphere_mean"] = _unit(self._shift(text, state)).mean(0)
        return state

    @staticmethod
    def _shift(x, state):
        return (x - state["text_mean"]) * state["scale"] + state["image_mean"]

    def _transform(self, x, start):
        return _unit(self._shift(x, self.state)) - self.state["sphere_mean"] + self.state["image_mean"]


class Linear(Projector):
    """Ridge regression from centred text to centred image embeddings (paired)."""

    name = "linear"
    data = "paired"

    def __init__(self, *, alpha: float = 1.0) -> None:
        if alpha < 0:
            raise InputError(f"linear alpha must be >= 0, got {alpha}")
        super().__init__()
        self.params = dict(alpha=float(alpha))

    def state_shapes(self, dim):
        return {"text_mean": (dim,), "image_mean": (dim,), "weight": (dim, dim)}

    def _fit(self, text, image):
        mt, mi = text.mean(0), image.mean(0)
        return {"text_mean": mt, "image_mean": mi, "weight": _ridge(text - mt, image - mi, self.params["alpha"])}

    def _transform(self, x, start):
        return (x - self.state["text_mean"]) @ self.state["weight"] + self.state["image_mean"]


class Procrustes(Projector):
    """Orthogonal map between centred text and centred image embeddings (paired)."""

    name = "procrustes"
    data = "paired"

    def state_shapes(self, dim):
        return {"text_mean": (dim,), "image_mean": (dim,), "rotation": (dim, dim)}

    def _fit(self, text, image):
        mt, mi = text.mean(0), image.mean(0)
        u, _, vt = np.linalg.svd((text - mt).T.astype(np.float64) @ (image - mi))
        return {"text_mean": mt, "image_mean": mi, "rotation": u @ vt}

    def _transform(self, x, start):
        return (x - self.state["text_mean"]) @ self.state["rotation"] + self.state["image_mean"]


def _ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """argmin_W |xW - y|^2 + alpha |W|^2 in float64, (d_in, d_out)."""
    x64 = x.astype(np.float64)
    gram = x64.T @ x64 + alpha * np.eye(x.shape[1])
    return np.linalg.solve(gram, x64.T @ y.astype(np.float64))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
