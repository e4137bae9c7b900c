"""Programmatic, LLM-free conversations from scene graphs or COCO-style instances (exact answers)."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..hashing import stable_int
from .conversations import to_llava
from .programs import balance, generate, things_from_instances, things_from_scene, world_vocab


def _things(row: dict):
    if "scene" in row and row["scene"] is not None:
        from ..world.scene import SceneGraph

        return things_from_scene(SceneGraph.from_dict(row["scene"]))
    if "instances" in row:
        return things_from_instances(row["instances"])
    raise InputError(f"row {row.get('id')!r} has neither a 'scene' nor 'instances' to ask about")


def program_conversations(
    rows: list[dict], *, seed: int = 0, turns: int = 4, vocab: dict | None = None, balance_strength: float = 0.5
) -> tuple[list[dict], list[dict]]:
    """(LLaVA rows with up to `turns` exact QA turns each, answers balanced across the batch; rejects for rows
    that support no question, such as an image with no annotated objects)."""
    if turns < 1:
        raise InputError(f"turns must be >= 1, got {turns}")
    parsed = [(row, _things(row)) for row in rows]
    if vocab is None:
        world = all("scene" in r for r, _ in parsed)
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
