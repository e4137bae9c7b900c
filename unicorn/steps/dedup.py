"""The `dedup` step: exact (normalised-text hash) and semantic (cosine >= threshold) duplicates of earlier rows are
rejected, the first one seen winning. The only step that must see every row, in shard order; its state (the hashes
and the index of kept vectors, `captions.dedup.Deduplicator`) is explicit. The step writes its float16 vectors of
each row in the `dedup_emb` column, which the run stores per shard, so `remember` rebuilds the state on resume by
reading them (format-1 runs: by encoding the captions again): a resumed run rejects exactly what a clean run
rejects, at the cost of reading, not encoding, what is done."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..captions.dedup import Deduplicator
from ..errors import InputError
from .base import NO_RUNTIME, Columns, Runtime, Step, alive


@dataclass(frozen=True)
class DedupConfig:
    threshold: float = 0.95  # cosine at or above which a caption is a semantic duplicate of a kept one
    encoder: str = "st:default"
    nlist: int = 4096  # the semantic index is exact up to this many kept rows, an IVF with this many lists beyond
    nprobe: int = 16  # lists searched per row once it is an IVF: more finds more near-duplicates, costs more

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise InputError(f"dedup.threshold must be in (0, 1], got {self.threshold}")
        if self.nlist < 1 or not 1 <= self.nprobe <= self.nlist:
            raise InputError(f"dedup needs nlist >= 1 and 1 <= nprobe <= nlist, got {self.nlist} and {self.nprobe}")


class DedupStep(Step):
    name = "dedup"
    config_class = DedupConfig
    ordered = True

    def __init__(self, config: DedupConfig, *, seed: int = 0, runtime: Runtime = NO_RUNTIME) -> None:
        from ..encoders import create_encoder

        self.config = config
        self.encoder = create_encoder(config.encoder)
        self.state = Deduplicator(self.encoder.dim, config.threshold, nlist=config.nlist, nprobe=config.nprobe)

    def __call__(self, batch: Columns) -> Columns:
        reject = list(batch["reject"])
        live = alive(batch)
        vectors = np.zeros((len(reject), self.encoder.dim), np.float16)
        if live:
            emb = np.asarray(self.encoder.encode_text([batch["caption"][i] for i in live]), np.float16)
            vectors[live] = emb
            # Only kept captions enter the state, so `remember` (kept captions only) rebuilds it exactly.
            for i, reason in zip(live, self.state.decide([batch["caption"][i] for i in live], emb), strict=True):
                reject[i] = reason
        return {**batch, "reject": reject, "dedup_emb": vectors}

    def remember(self, metadata: Columns, vectors: np.ndarray | None = None) -> None:
        """Add the kept rows of a finished shard (its metadata columns, and its stored dedup vectors where the run
        has them) to the state, as if this step had kept them."""
        captions = metadata["caption"]
        if captions:
            if vectors is None or len(vectors) != len(captions):
                vectors = self.encoder.encode_text(captions)
            self.state.remember(captions, vectors)
