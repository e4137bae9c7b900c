"""The projector interface: fit on embeddings, transform text embeddings, save and load a folder.

A projector folder holds `config.json` (format, version, method, parameters, dimension and the
SHA-256 of the weights) and `weights.safetensors`. Types are looked up in a fixed registry, never
by an import path read from a file, and weights load strictly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from safetensors.numpy import load_file, save_file

from .checks import check_embeddings, check_paired, l2_normalize
from .errors import InputError
from .io import atomic_path, sha256_file, write_json

FORMAT = "unicorn-projector"
VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.safetensors"


class Projector:
    """Maps L2-normalised text embeddings to stand-ins for image embeddings of the same space.

    Subclasses set `name` and `data` ("none", "unpaired" or "paired": what `fit` needs) and
    implement `state_shapes` (the arrays `_fit` produces), `_fit` and `_transform`.
    """

    name: ClassVar[str]
    data: ClassVar[str] = "none"
    renormalise: ClassVar[bool] = True  # False: outputs keep the length the method's arithmetic gives them

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}  # constructor arguments, saved in config.json
        self.state: dict[str, np.ndarray] = {}
        self.dim: int | None = None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    @property
    def fitted(self) -> bool:
        return self.dim is not None

    def fit(self, text: np.ndarray, image: np.ndarray | None = None) -> Projector:
        """Fit on text embeddings and, where the method needs them, image embeddings.

        Paired methods need `image` row-aligned with `text`; unpaired ones only need the same
        dimension. Returns self.
        """
        if self.data == "paired":
            if image is None:
                raise InputError(f"projector '{self.name}' needs paired image embeddings to fit")
            text, image = check_paired(text, image)
        else:
            text = check_embeddings(text, "text embeddings")
            if self.data == "unpaired":
                if image is None:
                    raise InputError(f"projector '{self.name}' needs image embeddings to fit")
                image = check_embeddings(image, "image embeddings", dim=text.shape[1])
        text = l2_normalize(text)
        image = None if image is None else l2_normalize(image)
        self.state = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in self._fit(text, image).items()}
        self.dim = text.shape[1]
        return self

    def transform(self, text: np.ndarray, *, chunk_size: int = 65536) -> np.ndarray:
        """Map text embeddings (n, dim) to synthetic image embeddings (n, dim), float32, L2-normalised unless the
        method's published arithmetic says otherwise (`renormalise = False`)."""
        if not self.fitted:
            raise InputError(f"projector '{self.name}' is not fitted")
        text = np.asarray(text)
        check_embeddings(text[:1], "text embeddings", dim=self.dim)  # shape errors before any work
        out = np.empty(text.shape, dtype=np.float32)
        self.transform_into(text, out, chunk_size=chunk_size)
        return out

    def transform_into(self, text: np.ndarray, out: np.ndarray, *, chunk_size: int = 65536) -> None:
        """Transform `text` chunk by chunk into `out` (same shape, e.g. a memmap), keeping memory flat."""
        if out.shape != text.shape:
            raise InputError(f"output shape {out.shape} does not match input shape {text.shape}")
        for start in range(0, text.shape[0], chunk_size):
            chunk = text[start : start + chunk_size]
            out[start : start + len(chunk)] = self.transform_chunk(chunk, start)

    def transform_chunk(self, chunk: np.ndarray, start: int = 0) -> np.ndarray:
        """Validate and transform rows `start .. start + len(chunk)` of a larger input (for streaming)."""
        if not self.fitted:
            raise InputError(f"projector '{self.name}' is not fitted")
        chunk = check_embeddings(chunk, "text embeddings", dim=self.dim, row_offset=start)
        out = self._transform(l2_normalize(chunk), start)
        return l2_normalize(out) if self.renormalise else np.ascontiguousarray(out, dtype=np.float32)

    def state_shapes(self, dim: int) -> dict[str, tuple[int, ...]]:
        """The name and shape of every fitted array, for strict loading."""
        return {}

    def _fit(self, text: np.ndarray, image: np.ndarray | None) -> dict[str, np.ndarray]:
        return {}

    def _transform(self, x: np.ndarray, start: int) -> np.ndarray:
        """Map a chunk of normalised rows; `start` is the chunk's first row index (for seeded noise)."""
        raise NotImplementedError

    def save(self, folder: str | os.PathLike) -> None:
        """Write `config.json` and `weights.safetensors` into `folder` (created if needed)."""
        if not self.fitted:
            raise InputError(f"projector '{self.name}' is not fitted; nothing to save")
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / WEIGHTS_NAME) as tmp:
            save_file(self.state, str(tmp), metadata={"format": FORMAT, "version": str(VERSION)})
            digest = sha256_file(tmp)
        config = {
            "format": FORMAT,
            "version": VERSION,
            "method": self.name,
            "dim": self.dim,
            "params": self.params,
            "weights_sha256": digest,
        }
        write_json(folder / CONFIG_NAME, config, sort_keys=True)

    @classmethod
    def from_folder(cls, folder: Path, config: dict[str, Any]) -> Projector:
        """Rebuild a fitted projector from its folder; called by `load_projector` after the config checks."""
        projector = cls(**config["params"])
        weights_path = folder / WEIGHTS_NAME
        if not weights_path.is_file():
            raise InputError(f"projector folder {folder} has no {WEIGHTS_NAME}")
        if sha256_file(weights_path) != config.get("weights_sha256"):
            raise InputError(f"{weights_path} does not match the checksum in {CONFIG_NAME}: the file was altered")
        state = load_file(str(weights_path))
        dim = config["dim"]
        shapes = projector.state_shapes(dim)
        missing, unexpected = sorted(set(shapes) - set(state)), sorted(set(state) - set(shapes))
        if missing or unexpected:
            raise InputError(f"{weights_path}: missing keys {missing}, unexpected keys {unexpected}")
        for key, value in state.items():
            if value.shape != shapes[key] or not np.isfinite(value).all():
                raise InputError(
                    f"{weights_path}: array '{key}' has shape {value.shape}, expected {shapes[key]}, or is not finite"
                )
        projector.state = state
        projector.dim = dim
        return projector
