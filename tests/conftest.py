from pathlib import Path

import numpy as np
import pytest

from modality_transfer.datasets import synthetic_pairs

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COCO500 = SHARED / "coco500_clip_vitb16"


@pytest.fixture(scope="session")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    """Seeded synthetic (text, image) pairs with a CLIP-like gap."""
    return synthetic_pairs(n=300, dim=64, seed=1)


@pytest.fixture(scope="session")
def coco500() -> tuple[np.ndarray, np.ndarray]:
    """Real CLIP ViT-B/16 embeddings of 500 COCO pairs from ../shared/data (skips where absent)."""
    if not (COCO500 / "text.npy").is_file():
        pytest.skip(f"real COCO CLIP pairs not found at {COCO500}")
    return np.load(COCO500 / "text.npy"), np.load(COCO500 / "image.npy")
