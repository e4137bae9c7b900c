"""Programmatic, LLM-free conversations from scene graphs or COCO-style instances (exact answers)."""

from __future__ import annotations

import numpy as np

from ..context import NO_CONTEXT, RowContext
from ..errors import InputError
from ..hashing import stable_int
from .conversations import to_llava
from .programs import balance, generate, things_from_instances, things_from_scene, world_vocab


def row_context(row: dict) -> RowContext:
    """A program row's context: `context` (a RowContext), or a `scene` dict, or COCO-style `instances`."""
    if isinstance(row.get("context"), RowContext):
        return row["context"]
    if row.get("scene") is not None:
        return RowContext.decode(row["scene"])
    if "instances" in row:
        return RowContext.boxes(row["instances"])
    return NO_CONTEXT


def _things(row: dict):
    context = row_context(row)
    if context.is_world:
        return things_from_scene(context.scene_graph())
    if context.is_boxes:
        return things_from_instances(context.instances)
    raise InputError(f"row {row.get('id')!r} has neither a world scene nor boxes to ask about")


def program_conversations(
    rows: list[dict], *, seed: int = 0, turns: int = 4, vocab: dict | None = None, balance_strength: float = 0.5
) -> tuple[list[dict], list[dict]]:
    """(LLaVA rows with up to `turns` exact QA turns each, answers balanced across the batch; rejects for rows
    that support no question, such as an image with no annotated objects)."""
    if turns < 1:
        raise InputError(f"turns must be >= 1, got {turns}")
    parsed = [(row, _things(row)) for row in rows]
    if vocab is None:
        world = all(row_context(r).is_world for r, _ in parsed)
        vocab = world_vocab() if world else {"name": tuple(sorted({t.name for _, ts in parsed for t in ts}))}
    asked = []
    for row, things in parsed:
        rng = np.random.default_rng(stable_int(seed, row["id"]))
        asked.append([(row["id"], qa) for qa in generate(things, rng, vocab=vocab, per_scene=2 * turns)])
    flat = [qa for per in asked for _, qa in per]
    keep = {id(qa) for qa in balance(flat, np.random.default_rng(seed), strength=balance_strength)}  # same objects
    out, rejects = [], []
    for (row, _), per in zip(parsed, asked, strict=True):
        chosen = [qa for _, qa in per if id(qa) in keep][:turns] or [qa for _, qa in per][:1]
        if chosen:
            out.append(
                to_llava(
                    row["id"],
                    [(q.question, q.answer) for q in chosen],
                    source="programs",
                    kinds=[q.kind for q in chosen],
                )
            )
        else:
            rejects.append({"id": row["id"], "reason": "no question can be asked (no objects)"})
    return out, rejects
