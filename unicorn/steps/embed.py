"""The `embed` step: the text encoder embeds each kept caption and the modality-gap projector maps it into the
image-embedding space. Adds `text_emb` and `image_emb`, float32 arrays of shape (rows, dim); rejected rows get
zeros (they are never written)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from ..errors import InputError
from .base import NO_RUNTIME, Columns, Runtime, Step, alive


@dataclass(frozen=True)
class EmbedConfig:
    encoder: str = "world"
    projector: str = "checkpoints/world-projector"
    batch_size: int = 64
    # float64 (CPU): the same bytes on every engine and worker count; float16 for GPU throughput.
    precision: str = "float64"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError(f"embed.batch_size must be >= 1, got {self.batch_size}")
        if self.precision not in ("float64", "float32", "float16"):
            raise InputError(f"embed.precision must be float64, float32 or float16, got {self.precision!r}")


class EmbedStep(Step):
    name = "embed"
    config_class = EmbedConfig

    def __init__(self, config: EmbedConfig, *, seed: int = 0, runtime: Runtime = NO_RUNTIME) -> None:
        from modality_transfer import load_projector

        from ..encoders import create_encoder

        self.config = config
        self.projector = load_projector(config.projector)
        self.encoder = create_encoder(config.encoder).set_precision(config.precision)
        if self.projector.dim != self.encoder.dim:
            raise InputError(
                f"projector {config.projector} maps {self.projector.dim}-d embeddings but encoder "
                f"{config.encoder} makes {self.encoder.dim}-d ones"
            )
        self.seconds = {"encoder_seconds": 0.0, "projector_seconds": 0.0}

    def __call__(self, batch: Columns) -> Columns:
        import time

        live = alive(batch)
        n, dim = len(batch["id"]), self.encoder.dim
        text = np.zeros((n, dim), np.float32)
        image = np.zeros((n, dim), np.float32)
        if live:
            start = time.perf_counter()
            emb = self.encoder.encode_text([batch["caption"][i] for i in live], batch_size=self.config.batch_size)
            middle = time.perf_counter()
            text[live] = emb
            # One BLAS thread for the projector's matmuls: with more, the reduction order (and so the last bits,
            # and some float16 values) depends on the thread count, which differs between a Ray worker
            # (OMP_NUM_THREADS=1) and the local engine; measured at shard_size 256, 37 of 40 shards' image_emb
            # differed. The projector is a small share of the step (projector_seconds in the run's counters).
            with threadpool_limits(limits=1):
                mapped = self.projector.transform(emb)
            # the run folder stores unit vectors (the clip-retrieval layout's promise); a method whose published
            # arithmetic leaves them shorter (unicorn_released) is exported exactly by `export --format unicorn`
            image[live] = mapped / np.maximum(np.linalg.norm(mapped, axis=1, keepdims=True), 1e-12)
            self.seconds["encoder_seconds"] += middle - start
            self.seconds["projector_seconds"] += time.perf_counter() - middle
        return {**batch, "text_emb": text, "image_emb": image}

    def counters(self) -> dict[str, float]:
        return dict(self.seconds)
