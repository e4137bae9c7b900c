"""The `dedup` step: exact (normalised-text hash) and semantic (faiss, cosine >= threshold) duplicates of
earlier rows are rejected, the first one seen winning. The only step that must see every row, in shard
order; its state (the hashes and the index of kept embeddings) is explicit, and `remember` rebuilds it from
finished shards, so a resumed run rejects exactly what a clean run rejects."""

from __future__ import annotations

from dataclasses import dataclass

from ..captions.dedup import SemanticDedup, normalised_hash
from ..errors import InputError
from .base import NO_RUNTIME, Columns, Runtime, Step, alive


@dataclass(frozen=True)
class DedupConfig:
    threshold: float = 0.95  # cosine at or above which a caption is a semantic duplicate of a kept one
    encoder: str = "st:default"

    def __post_init__(self) -> None:
        if not 0 < self.threshold <= 1:
            raise InputError(f"dedup.threshold must be in (0, 1], got {self.threshold}")


class DedupStep(Step):
    name = "dedup"
    ordered = True

    def __init__(self, config: DedupConfig, *, seed: int = 0, runtime: Runtime = NO_RUNTIME) -> None:
        from ..encoders import create_encoder

        self.config = config
        self.encoder = create_encoder(config.encoder)
        self.seen: set[str] = set()  # normalised-text hashes of kept captions
        self.semantic = SemanticDedup(self.encoder.dim, config.threshold)

    def __call__(self, batch: Columns) -> Columns:
        reject = list(batch["reject"])
        live = alive(batch)
        if live:
            emb = self.encoder.encode_text([batch["caption"][i] for i in live])
            for i, row in zip(live, emb, strict=True):
                # Only kept captions enter the state, so `remember` (kept captions only) rebuilds it exactly.
                key = normalised_hash(batch["caption"][i])
                if key in self.seen:
                    reject[i] = "exact_duplicate"
                elif self.semantic.duplicates(row[None])[0]:
                    reject[i] = "semantic_duplicate"
                else:
                    self.seen.add(key)
        return {**batch, "reject": reject}

    def remember(self, metadata: Columns) -> None:
        """Add the kept rows of a finished shard (its metadata columns) to the state, as if this step had kept them."""
        captions = metadata["caption"]
        if captions:
            self.seen.update(normalised_hash(c) for c in captions)
            self.semantic.duplicates(self.encoder.encode_text(captions))
