"""Validation of embedding arrays at every public entry point."""

from __future__ import annotations

import numpy as np

from .errors import InputError


def check_embeddings(
    x: np.ndarray, name: str = "embeddings", *, dim: int | None = None, row_offset: int = 0
) -> np.ndarray:
    """Return `x` as float32 after checking it is a non-empty, finite, non-zero 2-D array.

    Raises:
        InputError: naming `name` and the first offending row (counted from `row_offset`).
    """
    x = np.asarray(x)
    if x.ndim != 2:
        raise InputError(f"{name} must be a 2-D array (rows, dim), got shape {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"{name} is empty: shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise InputError(f"{name} must be numeric, got dtype {x.dtype}")
    if dim is not None and x.shape[1] != dim:
        raise InputError(f"{name} has dimension {x.shape[1]}, expected {dim}")
    x = x.astype(np.float32, copy=False)
    finite = np.isfinite(x).all(axis=1)
    if not finite.all():
        raise InputError(f"{name} has NaN or Inf values in row {row_offset + int(np.argmin(finite))}")
    norms = np.linalg.norm(x, axis=1)
    if (norms == 0).any():
        raise InputError(f"{name} has a zero vector in row {row_offset + int(np.argmin(norms))}")
    return x


def check_paired(text: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check two arrays are valid embeddings with the same number of rows and dimension."""
    text = check_embeddings(text, "text embeddings")
    image = check_embeddings(image, "image embeddings")
    if text.shape[0] != image.shape[0]:
        raise InputError(f"row counts differ: {text.shape[0]} text rows, {image.shape[0]} image rows")
    if text.shape[1] != image.shape[1]:
        raise InputError(f"dimensions differ: text {text.shape[1]}, image {image.shape[1]}")
    return text, image


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation in float32; rows stay finite (a zero row stays zero)."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32, copy=False)
