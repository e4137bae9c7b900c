"""A seeded synthetic stand-in for paired CLIP embeddings, with a real-looking modality gap.

Used where no real pairs are at hand (the built-in example of `unicorn gap bench`, tests). Text
and image rows share a latent concept but live in two narrow cones around different centres, each
modality mixes the concept its own way and adds its own clutter, so raw text retrieves the right
image only about half of the time, as CLIP's does on COCO.
"""

from __future__ import annotations

import numpy as np


def synthetic_pairs(
    n: int = 500, dim: int = 128, *, concepts: int = 24, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Return (text, image), each (n, dim) float32 and L2-normalised, row i of one paired with row i of the other."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((dim, dim)))[0]
    image_centre = basis[:, 1]
    text_centre = 0.2 * image_centre + np.sqrt(1 - 0.2**2) * basis[:, 0]  # cones 78 degrees apart
    shared = basis[:, 2 : 2 + concepts]  # directions both modalities express
    private = rng.standard_normal((2, dim, dim)) / np.sqrt(dim)  # each modality's own clutter
    z = rng.standard_normal((n, concepts)) * np.linspace(1.0, 0.3, concepts)  # concept strength decays
    mix = np.eye(concepts) + 1.2 * rng.standard_normal((concepts, concepts)) / np.sqrt(concepts)

    def embed(centre, loadings, clutter, clutter_norm):
        noise = rng.standard_normal((n, dim)) @ clutter
        x = 2.0 * centre + 0.45 * loadings + clutter_norm * noise / np.linalg.norm(noise, axis=1, keepdims=True)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    image = embed(image_centre, z @ shared.T, private[0], 0.9)
    text = embed(text_centre, (z @ mix) @ shared.T, private[1], 1.1)
    return text, image
