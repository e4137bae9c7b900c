"""`ShardResult`: what the steps made of one shard of seeds, as the storage writes it and the manifest counts it.

Built from the last step's column batch by `finish_shard`, the same for every engine: kept rows become metadata
and embeddings, their conversations the instruction rows, and every rejected row a count under its reason.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..captions.filters import FUNNEL
from ..steps import STEPS, Columns, StepRun, alive


def metadata_columns() -> tuple[str, ...]:
    """The columns each shard's metadata keeps: what the steps declare (`Step.metadata`), in step order."""
    return tuple(dict.fromkeys(c for step in STEPS.values() for c in step.metadata))


DEDUP = {"exact_duplicate": "dedup_exact", "semantic_duplicate": "dedup_semantic"}


def scene_stats(batch: Columns, live: list[int]) -> dict[str, float]:
    """Scene grounding of the LLM variants, before filtering (every variant that has a caption and a scene) and after
    (the kept ones): how many were checked, how many name something the scene lacks, wrong mentions, coverage."""
    out: dict[str, float] = {}
    if "scene_errors" not in batch:
        return out
    kept = set(live)
    for prefix, rows in (("scene", range(len(batch["id"]))), ("kept_scene", kept)):
        checked = [i for i in rows if batch["scene_errors"][i] is not None and batch["reject"][i] not in ("error",)]
        wrong = [len(json.loads(batch["scene_errors"][i])) for i in checked]
        out[f"{prefix}_checked"] = len(checked)
        out[f"{prefix}_hallucinated"] = sum(w > 0 for w in wrong)
        out[f"{prefix}_wrong_mentions"] = sum(wrong)
        out[f"{prefix}_coverage_sum"] = round(sum(batch["scene_coverage"][i] for i in checked), 4)
    return out


def reason_kind(reason: str | None) -> str:
    """A reject reason without its particulars: 'invalid JSON: Extra data: line 1 column 9' -> 'invalid JSON'."""
    return str(reason).split(":")[0].strip()[:80] or "unknown"


@dataclass
class ShardResult:
    index: int
    metadata: dict[str, list]  # metadata_columns() of the kept rows
    text_emb: np.ndarray  # (rows, dim) float32, L2-normalised
    image_emb: np.ndarray  # (rows, dim) float32, L2-normalised: the synthetic image embeddings
    instructions: list[dict]  # LLaVA rows whose `image` is a row id
    stats: dict[str, int]
    rejects: list[dict] = field(default_factory=list)  # examples, with their reasons
    seconds: dict[str, float] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)
    dedup_emb: np.ndarray | None = None  # (rows, dim) float16: the dedup step's vectors, its state on resume

    @property
    def rows(self) -> int:
        return len(self.metadata["id"])


def finish_shard(
    index: int, seeds: int, batch: Columns, runs: dict[str, StepRun], columns: tuple[str, ...] | None = None
) -> ShardResult:
    """The ShardResult of a shard of `seeds` seed rows whose last step returned `batch`; `columns`: the metadata
    columns to keep (default: what the registered steps declare; a worker is given the driver's)."""
    columns = metadata_columns() if columns is None else columns
    live = alive(batch)
    stats: Counter = Counter(seeds=seeds)
    stats["variants"] = sum(p != "seed" for p in batch["provenance"])
    filters = Counter(r for r in batch["reject"] if r in FUNNEL)
    stats.update({f"filter_{name}": filters[name] for name in FUNNEL})
    stats["filter_passed"] = sum(r is None or r in DEDUP for r, p in zip(batch["reject"], batch["provenance"],
                                                                          strict=True) if p != "seed")  # fmt: skip
    for reason, key in DEDUP.items():
        stats[key] = sum(r == reason for r in batch["reject"])
    stats.update(scene_stats(batch, live))
    instructions = [c for i in live for c in json.loads(batch["conversations"][i])]
    failed = [r for i in live for r in json.loads(batch["conversation_rejects"][i])]
    stats.update(rows=len(live), instructions=len(instructions), instruction_rejects=len(failed))
    examples = [
        {"id": batch["id"][i], "stage": "dedup" if batch["reject"][i] in DEDUP else "captions",
         "reason": batch["reject"][i], "caption": batch["caption"][i]}
        for i in range(len(batch["id"]))
        if batch["reject"][i] is not None
    ] + [{"stage": f"instruct ({r.get('source', 'llm')})", **r} for r in failed]  # fmt: skip
    # Counted by stage and the reason's head (free text after a colon, e.g. a JSON parser's position, would make
    # every reason unique); the report lists the top ones with an example each.
    kinds = Counter((e["stage"], reason_kind(e["reason"])) for e in examples)
    stats.update({f"reject:{stage}:{kind}": n for (stage, kind), n in kinds.items()})
    firsts: dict = {}
    for e in examples:
        firsts.setdefault((e["stage"], reason_kind(e["reason"])), e)
    counters: Counter = Counter()
    for run in runs.values():
        counters.update(run.counters)
    return ShardResult(
        index=index,
        metadata={name: [batch[name][i] for i in live] for name in columns},
        text_emb=np.asarray(batch["text_emb"])[live],
        image_emb=np.asarray(batch["image_emb"])[live],
        instructions=instructions,
        stats=dict(stats),
        rejects=list(firsts.values()),  # one example per stage and kind of reason
        seconds={name: run.seconds for name, run in runs.items()},
        counters=dict(counters),
        dedup_emb=np.asarray(batch["dedup_emb"], np.float16)[live] if "dedup_emb" in batch else None,
    )
