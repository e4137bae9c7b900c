"""The numbers of a run's report, apart from their rendering: counts through every stage and filter, seconds per
step, diversity, the gap against real images (world scenes rendered and embedded, where the encoder has an image
tower and rows carry scenes), and sample rows. `report.py` turns a RunSummary into plots and pages."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modality_transfer.metrics import centroid_gap, cos_paired, recall_at_k

from ..captions.diversity import diversity
from ..context import RowContext
from ..seeds import SKIPS
from ..steps import step_names
from .shard import reason_kind
from .storage import RunFolder, iter_shards, run_totals

MAX_ROWS = 20000  # rows read for diversity, the gap, samples and plots (counts cover every row)
MAX_REAL = 300  # rows whose scene is rendered and embedded as the real-image reference


@dataclass
class RunSummary:
    shards: int
    rows: int
    rows_per_second: float
    counts: list[tuple[str, int]]
    seconds: list[tuple[str, float, str]]  # (step, seconds, share of wall)
    diversity: dict[str, dict]
    gap: dict[str, dict]  # embedding -> {cos_paired, centroid_gap, r1} against real images
    samples: list[tuple[str, str, str, str]]  # (id, provenance, persona, caption): a few of every provenance
    conversations: list[tuple[str, str, str]] = field(default_factory=list)  # (source, id, first turns)
    rejects: list[tuple[str, str, int, str]] = field(default_factory=list)  # (stage, reason, count, one example)
    grounding: list[tuple[str, int, str, str, str]] = field(default_factory=list)  # scene grounding before/after
    seed_captions: list[str] = field(default_factory=list)
    llm_captions: list[str] = field(default_factory=list)
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)  # text, synthetic image[, real image]
    coverage: list[tuple[str, str]] = field(default_factory=list)  # (figure, what it covers and what it cannot see)


def _real_images(encoder, scenes: list[dict]) -> np.ndarray:
    from ..world import render  # only for runs whose rows carry world scenes
    from ..world.scene import SceneGraph

    return encoder.encode_image([render(SceneGraph.from_dict(s)) for s in scenes])


def summarise_run(root: str | Path, *, encoder=None, max_rows: int = MAX_ROWS) -> RunSummary:
    """Counts and seconds over the whole run (from the totals the run recorded); diversity, the gap, samples and
    plots over its first `max_rows` rows (shards in order), so a report of a million-row run fits in memory."""
    root = Path(root)
    manifest, totals_record = run_totals(root)
    shards, sampled = [], 0
    for shard in iter_shards(root):
        if sampled >= max_rows:
            break
        shards.append(tuple(shard))
        sampled += len(shard.metadata["id"])
    meta = {k: [v for m, *_ in shards for v in m[k]] for k in shards[0][0]} if shards else {}
    text = np.concatenate([s[1] for s in shards]).astype(np.float32) if shards else np.zeros((0, 2))
    image = np.concatenate([s[2] for s in shards]).astype(np.float32) if shards else np.zeros((0, 2))
    conversations = [c for s in shards for c in s[3]]

    totals = Counter(totals_record["stats"])
    seconds = Counter(totals_record["seconds"])
    provenance = meta.get("provenance", [])
    seed_rows = [c for c, p in zip(meta.get("caption", []), provenance, strict=True) if p == "seed"]
    llm_rows = [c for c, p in zip(meta.get("caption", []), provenance, strict=True) if p != "seed"]

    gap, real = {}, None
    contexts = [RowContext.decode(s) for s in meta.get("scene", [])]
    # real images exist only where a renderer does: world scenes; boxes and plain captions have none (the report
    # says so instead of comparing against nothing)
    with_scene = [k for k, c in enumerate(contexts) if c.is_world][:MAX_REAL]
    kinds = Counter(c.kind for c in contexts)
    if encoder is not None and getattr(encoder, "has_image", False) and with_scene:
        real = _real_images(encoder, [contexts[k].data for k in with_scene])
        idx = np.arange(len(with_scene))
        for name, emb in (("raw text", text[with_scene]), ("synthetic", image[with_scene])):
            gap[name] = {
                "cos_paired": cos_paired(emb, real),
                "centroid_gap": centroid_gap(emb, real),
                "r1": recall_at_k(emb, real, idx, ks=(1,))[1],
            }

    samples = _samples(meta)
    conversation_samples = _conversation_samples(conversations)
    rejects = _top_rejects(RunFolder(root).records(manifest), totals)
    grounding = [
        (label, int(totals[f"{p}_checked"]), f"{totals[f'{p}_hallucinated'] / totals[f'{p}_checked']:.1%}",
         f"{totals[f'{p}_wrong_mentions'] / totals[f'{p}_checked']:.2f}",
         f"{totals[f'{p}_coverage_sum'] / totals[f'{p}_checked']:.2f}")
        for label, p in (("all LLM variants (before filtering)", "scene"), ("kept LLM rows (after)", "kept_scene"))
        if totals[f"{p}_checked"]
    ]  # fmt: skip

    seed_file = manifest.get("seed_file", {})
    counts = [("seed lines read", seed_file.get("read", totals["seeds"]))]
    counts += [(f"seeds skipped: {k}", seed_file[k]) for k in SKIPS if seed_file.get(k)]
    counts += [("seeds", totals["seeds"]), ("LLM variants", totals["variants"])]
    filters = [(k, v) for k, v in totals.items() if k.startswith("filter_") and k != "filter_passed"]
    counts += [(f"removed by filter: {k[7:]}", v) for k, v in filters]
    counts += [
        ("removed as exact duplicates", totals["dedup_exact"]),
        ("removed as semantic duplicates", totals["dedup_semantic"]),
        ("rows (captions with embeddings)", totals["rows"]),
        ("conversations", totals["instructions"]),
        ("conversation rejects", totals["instruction_rejects"]),
    ]
    wall = seconds["total"] or 1e-9
    embeddings = {"text": text, "synthetic image": image} | ({"real image": real} if real is not None else {})
    coverage = [
        ("counts, seconds, reject reasons", f"every row of the run ({totals['rows']} rows)"),
        ("diversity, samples, plots", f"the first {len(meta.get('id', []))} rows, in shard order"),
        ("row context", f"world scene graphs {kinds['world']}, captions + boxes {kinds['boxes']}, none {kinds['none']} "
                        "(in the rows read)"),
        ("gap against real images",
         f"{len(with_scene)} rows with world scenes, rendered and embedded" if gap else
         "not measured: no row read has a world scene (only world scenes can be rendered) or the encoder has no "
         "image tower"),
        ("scene grounding (hallucinated)",
         "LLM caption variants of rows with a context, checked against the world's closed vocabulary (world: objects, "
         "attributes, numbers, relations) or the boxes' COCO categories (nouns only); what a variant says outside "
         "that vocabulary is not checked, so 0% means no wrong mention that the check can read"),
        ("conversation rejects",
         "conversations that failed their schema or the grounding check (words of the caption and context, and the "
         "scene check on what each turn asserts); a kept turn can still be nonsense the checks cannot read"),
    ]  # fmt: skip
    return RunSummary(
        shards=totals_record["shards"],
        rows=totals["rows"],
        rows_per_second=totals["rows"] / wall,
        counts=counts,
        seconds=[(k, round(seconds[k], 2), f"{100 * seconds[k] / wall:.1f}%") for k in (*step_names(), "write")],
        diversity={"seed captions": diversity(seed_rows), "LLM captions": diversity(llm_rows)},
        gap=gap,
        samples=samples,
        conversations=conversation_samples,
        rejects=rejects,
        grounding=grounding,
        seed_captions=seed_rows,
        llm_captions=llm_rows,
        embeddings=embeddings,
        coverage=coverage,
    )


def _samples(meta: dict, per: int = 3) -> list[tuple[str, str, str, str]]:
    """Up to `per` rows of each provenance (seed rows, then each LLM), so LLM rows show even when seeds come first."""
    picked: dict[str, list[int]] = {}
    for k, provenance in enumerate(meta.get("provenance", [])):
        rows = picked.setdefault(provenance, [])
        if len(rows) < per:
            rows.append(k)
    order = sorted(picked, key=lambda p: (p != "seed", p))
    return [(meta["id"][k], p, meta["persona"][k] or "", meta["caption"][k]) for p in order for k in picked[p]]


def _conversation_samples(conversations: list[dict], per: int = 3) -> list[tuple[str, str, str]]:
    """The first turns of up to `per` conversations of each source: programs (exact QA) and the LLM."""
    out = []
    for source, mine in (
        ("programs", lambda i: i.endswith("#programs")),
        ("LLM", lambda i: not i.endswith("#programs")),
    ):
        rows = [c for c in conversations if mine(c["id"])][:per]
        for c in rows:
            turns = " / ".join(t["value"].replace("<image>\n", "") for t in c["conversations"][:4])
            out.append((source, c["image"], turns))
    return out


def _top_rejects(records, totals, top: int = 5) -> list[tuple[str, str, int, str]]:
    """Per stage, its `top` most frequent kinds of reject reason, with the count and one example from the shards."""
    examples: dict = {}
    for shard in records:
        for e in shard.get("rejects", []):
            text = e.get("raw") or e.get("caption") or ""  # an LLM reply shows why it failed; a caption is itself
            examples.setdefault((e.get("stage", "captions"), reason_kind(e.get("reason"))), (e.get("reason"), text))
    counts = [(k.split(":", 2)[1:], v) for k, v in totals.items() if k.startswith("reject:") and v]
    by_stage: dict[str, list] = {}
    for (stage, kind), n in sorted(counts, key=lambda x: (-x[1], x[0])):
        by_stage.setdefault(stage, []).append((kind, n))
    out = []
    for stage in sorted(by_stage):
        for kind, n in by_stage[stage][:top]:
            reason, text = examples.get((stage, kind), (kind, ""))
            example = f"{reason}: {text}" if reason != kind else text
            out.append((stage, kind, n, example.replace("\n", " ")[:240]))
    return out
