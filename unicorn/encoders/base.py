"""The encoder interface: texts (and images, where the model has an image tower) to L2-normalised float32."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import InputError


def load_error(spec: str, error: Exception) -> InputError:
    """The one-line error for a model that could not be loaded (no hub here: weights must be local)."""
    first_line = str(error).splitlines()[0] if str(error) else ""
    return InputError(
        f"could not load {spec}: {type(error).__name__}: {first_line} (the weights must be local or reachable)"
    )


@contextlib.contextmanager
def quiet_loading():
    """Silence load-time progress bars and weight reports, so the CLI's output stays its own."""
    import transformers

    level, root = transformers.logging.get_verbosity(), logging.getLogger()
    root_level = root.level
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        transformers.logging.set_verbosity(level)
        transformers.logging.enable_progress_bar()
        root.setLevel(root_level)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


class Encoder:
    """Batched, no-grad embedding of texts and images; subclasses embed one batch."""

    spec: str
    dim: int
    has_image: bool = True

    def __init__(self, *, device: str | None = None) -> None:
        self.device = device or default_device()
        # Half precision on a GPU halves memory and doubles throughput; outputs are cast back to float32.
        self.dtype = torch.float16 if self.device.startswith("cuda") else torch.float32

    @classmethod
    def declared_dim(cls, ident: str) -> int | None:
        """The embedding width this encoder will have, read from its config without loading weights, where that is
        cheap (None: known only once loaded). Lets a run refuse a projector of another width before any model loads."""
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r}, dim={self.dim}, device={self.device!r})"

    def set_precision(self, precision: str) -> Encoder:
        """Compute in `float64`, `float32` or `float16` from now on (outputs stay float32).

        float64 on a CPU makes the output independent of the BLAS kernel and thread count that a process happens
        to get (a Ray worker starts with OMP_NUM_THREADS=1, which changes float32 results in the last bits), so
        every engine writes the same float16 bytes; it costs about 2x the encoder's (small) time."""
        dtypes = {"float64": torch.float64, "float32": torch.float32, "float16": torch.float16}
        if precision not in dtypes:
            raise InputError(f"precision must be one of {', '.join(dtypes)}, got {precision!r}")
        self.dtype = dtypes[precision]
        self.model.to(self.dtype)
        return self

    def encode_text(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool | None = None) -> np.ndarray:
        """Embed texts to (len(texts), dim) float32 rows of unit norm, in input order."""
        if isinstance(texts, str):
            raise InputError("encode_text takes a list of strings, got a single string")
        texts = list(texts)
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise InputError(f"texts must be strings; row {bad[0]} is {type(texts[bad[0]]).__name__}")
        return self._run(texts, self._text_batch, batch_size, progress, "encode text")

    def encode_image(self, images: Sequence, *, batch_size: int = 64, progress: bool | None = None) -> np.ndarray:
        """Embed PIL images to (len(images), dim) float32 rows of unit norm, in input order."""
        if not self.has_image:
            raise InputError(f"encoder '{self.spec}' has no image tower")
        return self._run(list(images), self._image_batch, batch_size, progress, "encode image")

    def _run(self, items: list, fn, batch_size: int, progress: bool | None, desc: str) -> np.ndarray:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        out = np.empty((len(items), self.dim), dtype=np.float32)
        show = len(items) > 4 * batch_size if progress is None else progress
        with torch.inference_mode(), tqdm(total=len(items), desc=desc, unit="row", disable=not show) as bar:
            for start in range(0, len(items), batch_size):
                batch = fn(items[start : start + batch_size]).float()
                out[start : start + len(batch)] = torch.nn.functional.normalize(batch, dim=-1).cpu().numpy()
                bar.update(len(batch))
        return out

    def _text_batch(self, texts: list[str]) -> torch.Tensor:
        raise NotImplementedError

    def _image_batch(self, images: list) -> torch.Tensor:
        raise NotImplementedError
