"""The `instruct` step: multi-turn instruction data for each kept caption row. LLM-free programs ask exact
questions of a row's scene graph (ProVision-style); an LLM writes a conversation from the caption for a seeded
share of rows. Each row gets `conversations` (LLaVA rows, JSON) and `conversation_rejects` (JSON, with reasons).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..context import RowContext
from ..errors import InputError
from ..hashing import stable_int
from ..instruct.from_programs import program_conversations
from ..instruct.llava_kinds import KINDS, write_kinds
from ..instruct.slots import QUESTIONS
from ..instruct.writer import write_conversations
from .base import NO_RUNTIME, Columns, Runtime, Step, alive, llm_options


@dataclass(frozen=True)
class InstructConfig:
    llm: str = "llamacpp:default"
    programs: bool = True  # exact QA from scene graphs where a row has one
    turns: int = 4  # turns per programmatic conversation
    llm_share: float = 0.25  # share of rows that also get an LLM-written conversation (chosen by a seeded hash)
    min_turns: int = 3
    max_turns: int = 5
    max_tokens: int = 320
    repairs: int = 1  # repair-and-retry rounds for a reply that fails the schema
    constrained: bool = True  # enforce the conversation's JSON Schema while decoding (every backend)
    min_grounded_turns: int = 2  # a conversation with fewer turns grounded in its context is rejected
    # "slots": questions and short answers drawn from what the caption states (instruct/slots.py; for the small
    # embedded model); "free": the model writes its own questions (for a served larger model)
    questions: str = "slots"
    # LLaVA's kinds the LLM writes, comma-separated: conv (multi-turn QA), detail (a detailed description), complex
    # (a reasoning question); detail and complex are written from the symbolic context (captions + boxes)
    kinds: str = "conv"
    encoder: str = "st:default"  # detail and complex answers: their cosine to the captions (grounding.MIN_COSINE)

    def __post_init__(self) -> None:
        if not 0 <= self.llm_share <= 1:
            raise InputError(f"instruct.llm_share must be in [0, 1], got {self.llm_share}")
        if self.turns < 1:
            raise InputError(f"instruct.turns must be >= 1, got {self.turns}")
        if not 1 <= self.min_turns <= self.max_turns:
            raise InputError(
                f"need 1 <= instruct.min_turns <= instruct.max_turns, got {self.min_turns}, {self.max_turns}"
            )
        if self.repairs < 0:
            raise InputError(f"instruct.repairs must be >= 0, got {self.repairs}")
        if self.questions not in QUESTIONS:
            raise InputError(f"instruct.questions must be one of {', '.join(QUESTIONS)}, got {self.questions!r}")
        unknown = [k for k in self.kind_list if k not in KINDS]
        if unknown or not self.kind_list:
            raise InputError(f"instruct.kinds must name some of {', '.join(KINDS)}, got {self.kinds!r}")

    @property
    def kind_list(self) -> tuple[str, ...]:
        return tuple(k.strip() for k in self.kinds.split(",") if k.strip())


def chosen_for_llm(row_id: str, seed: int, share: float) -> bool:
    """Whether a row gets an LLM-written conversation: a seeded hash of its id, so any batching agrees."""
    return stable_int(seed, row_id, "llm") % 10_000 < share * 10_000


def context_row(row_id: str, scene: str | None) -> dict:
    """A program row: the row's id and its context (`RowContext`, decoded from the `scene` column)."""
    return {"id": row_id, "context": RowContext.decode(scene)}


class InstructStep(Step):
    name = "instruct"
    config_class = InstructConfig

    def __init__(self, config: InstructConfig, *, seed: int = 0, runtime: Runtime = NO_RUNTIME) -> None:
        from ..llm import create_llm

        self.config, self.seed = config, seed
        self.llm = create_llm(config.llm, **llm_options(config.llm, runtime)) if config.llm_share > 0 else None
        self.encoder = None
        if self.llm is not None and set(config.kind_list) - {"conv"}:
            from ..encoders import create_encoder

            self.encoder = create_encoder(config.encoder)

    def __call__(self, batch: Columns) -> Columns:
        c = self.config
        live = alive(batch)
        made: dict[str, list[dict]] = {batch["id"][i]: [] for i in live}
        failed: dict[str, list[dict]] = {batch["id"][i]: [] for i in live}
        if c.programs:
            rows = [context_row(batch["id"][i], batch["scene"][i]) for i in live if batch["scene"][i]]
            convs, rejects = program_conversations(rows, seed=self.seed, turns=c.turns)
            for conv in convs:
                made[conv["id"]].append({**conv, "id": f"{conv['id']}#programs", "image": conv["id"]})
            for r in rejects:
                failed[r["id"]].append({**r, "source": "programs"})
        chosen = [i for i in live if chosen_for_llm(batch["id"][i], self.seed, c.llm_share)]
        if chosen and self.llm is not None:
            rows = {
                "id": [batch["id"][i] for i in chosen],
                "caption": [batch["caption"][i] for i in chosen],
                "scene": [json.loads(batch["scene"][i]) if batch["scene"][i] else None for i in chosen],
            }
            common = dict(seed=self.seed, min_turns=c.min_turns, max_turns=c.max_turns, repairs=c.repairs,
                          max_tokens=c.max_tokens, constrained=c.constrained,
                          min_grounded_turns=c.min_grounded_turns, questions=c.questions)  # fmt: skip
            if c.kind_list == ("conv",):
                convs, rejects = write_conversations(rows, self.llm, **common)
                convs = [{**conv, "id": f"{conv['id']}#llm", "image": conv["id"]} for conv in convs]
                rejects = [{**r, "source": "llm"} for r in rejects]
            else:  # LLaVA's kinds: ids end in #conv, #detail, #complex
                convs, rejects = write_kinds(rows, self.llm, c.kind_list, encoder=self.encoder, **common)
                rejects = [{**r, "source": f"llm {r['kind']}"} for r in rejects]
            for conv in convs:
                made[conv["image"]].append(conv)
            for r in rejects:
                failed[r["id"]].append(r)
        ids = batch["id"]
        return {
            **batch,
            "conversations": [json.dumps(made.get(i, []), ensure_ascii=False) for i in ids],
            "conversation_rejects": [json.dumps(failed.get(i, []), ensure_ascii=False) for i in ids],
        }
