"""Reading and writing embedding files without pickle, and without half-written outputs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError


def load_npy(path: str | os.PathLike, name: str, *, mmap: bool = False) -> np.ndarray:
    """Load a .npy array (never pickled objects); `mmap` keeps large files on disk."""
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r" if mmap else None)
    except FileNotFoundError:
        raise InputError(f"{name} file not found: {path}") from None
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"{name} file {path} is not a readable .npy array: {e}") from None


def write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write JSON through a temporary file, so a failure leaves no partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def transform_file(projector, text_path: str | os.PathLike, out_path: str | os.PathLike, *, chunk_size: int = 65536) -> int:
    """Apply `projector` to a .npy file chunk by chunk into `out_path` (.npy, float32); returns rows.

    Memory stays flat: input is memory-mapped and output is written through a memmap, renamed
    into place only when every row is done.
    """
    text = load_npy(text_path, "text embeddings", mmap=True)
    if text.ndim != 2:
        raise InputError(f"text embeddings must be a 2-D array (rows, dim), got shape {text.shape}")
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.tmp.npy")
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=text.shape)
        projector.transform_into(text, out, chunk_size=chunk_size)
        out.flush()
        del out
        os.replace(tmp, out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return text.shape[0]
