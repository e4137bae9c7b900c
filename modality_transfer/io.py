"""Reading and writing embedding files without pickle, and without half-written outputs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary name beside `path` to write to; renamed onto `path` only when the block completes, and
    removed otherwise, so a failure never leaves a partial file under the final name."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, obj: Any, *, sort_keys: bool = False) -> None:
    """Write JSON through a temporary file, so a failure leaves no partial file."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n")


def write_jsonl(path: str | os.PathLike, rows) -> None:
    """Write one JSON object per line through a temporary file, so a failure leaves no partial file."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: str | os.PathLike, what: str) -> list[dict]:
    """The JSON objects of a JSONL file, refusing a missing or empty file and naming the first bad line."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {p.resolve()} not found")
    rows = []
    for n, line in enumerate(p.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{path}:{n} is not a JSON line: {type(e).__name__}") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n} is not a JSON object")
        rows.append(row)
    if not rows:
        raise InputError(f"{what} file {path} is empty")
    return rows


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
    try:
        with atomic_path(out_path) as tmp, open(tmp, "wb") as f:
            write_npy_header(f, reader.shape)
            for start, chunk in reader.chunks(chunk_size):
                f.write(projector.transform_chunk(chunk, start).tobytes())
    finally:
        reader.close()
    return reader.shape[0]
