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


def write_npy_header(f, shape: tuple[int, ...]) -> None:
    """Start a C-ordered float32 .npy file of `shape` in `f`; the rows follow as raw bytes."""
    np.lib.format.write_array_header_2_0(f, {"descr": "<f4", "fortran_order": False, "shape": tuple(shape)})


class NpyReader:
    """Reads row chunks of a 2-D .npy file with plain reads: no pickle, no memory map, flat memory."""

    def __init__(self, path: str | os.PathLike, name: str) -> None:
        self.name = name
        try:
            self.file = open(path, "rb")
        except FileNotFoundError:
            raise InputError(f"{name} file not found: {path}") from None
        try:
            version = np.lib.format.read_magic(self.file)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read_header:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, fortran, dtype = read_header[version](self.file)
        except (ValueError, OSError, EOFError) as e:
            self.file.close()
            raise InputError(f"{name} file {path} is not a readable .npy array: {e}") from None
        if len(shape) != 2 or fortran or dtype.hasobject:
            self.file.close()
            raise InputError(f"{name} must be a C-ordered numeric 2-D array (rows, dim), got shape {shape}")
        self.shape, self.dtype = shape, dtype

    def chunks(self, rows: int):
        """Yield (start, chunk) for consecutive blocks of at most `rows` rows."""
        for start in range(0, self.shape[0], rows):
            count = min(rows, self.shape[0] - start)
            chunk = np.fromfile(self.file, dtype=self.dtype, count=count * self.shape[1])
            if chunk.size != count * self.shape[1]:
                raise InputError(f"{self.name} file is truncated at row {start}")
            yield start, chunk.reshape(count, self.shape[1])

    def close(self) -> None:
        self.file.close()


def transform_file(
    projector, text_path: str | os.PathLike, out_path: str | os.PathLike, *, chunk_size: int = 65536
) -> int:
    """Apply `projector` to a .npy file chunk by chunk into `out_path` (.npy, float32); returns rows.

    Memory stays flat (a few chunks), and the output is renamed into place only when every row is done,
    so a failure leaves any earlier file at `out_path` untouched.
    """
    reader = NpyReader(text_path, "text embeddings")
    out_path = Path(out_path)
    tmp = out_path.with_name(f".{out_path.name}.tmp.npy")
    try:
        with open(tmp, "wb") as f:
            write_npy_header(f, reader.shape)
            for start, chunk in reader.chunks(chunk_size):
                f.write(projector.transform_chunk(chunk, start).tobytes())
        os.replace(tmp, out_path)
    finally:
        reader.close()
        tmp.unlink(missing_ok=True)
    return reader.shape[0]
