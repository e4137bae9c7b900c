"""LLM-written multi-turn conversations grounded only in the caption (Unicorn's multiple choice, short QA and
complex reasoning; CoSyn's yes/no, summary and unanswerable), as JSON validated against a schema, with a
bounded repair-and-retry loop. Rows that still fail are returned as rejects with the reason."""

from __future__ import annotations

import json

import jsonschema

from ..errors import InputError
from ..hashing import stable_int
from ..llm import LLM, SamplingParams
from ..prompts import load_text
from .conversations import to_llava

TYPES = ("multiple_choice", "short", "reasoning", "yes_no", "summary", "unanswerable")


def turn_schema(min_turns: int, max_turns: int) -> dict:
    return {
        "type": "array",
        "minItems": min_turns,
        "maxItems": max_turns,
        "items": {
            "type": "object",
            "required": ["type", "question", "answer"],
            "properties": {
                "type": {"enum": list(TYPES)},
                "question": {"type": "string", "minLength": 3},
                "answer": {"type": "string", "minLength": 1},
            },
        },
    }


def parse_turns(raw: str, schema: dict) -> tuple[list[dict] | None, str | None]:
    """(turns, None) for a valid reply, else (None, the reason); tolerates text around the JSON list."""
    start, end = raw.find("["), raw.rfind("]")
    if start < 0 or end <= start:
        return None, "no JSON list in the reply"
    try:
        turns = json.loads(raw[start : end + 1])
    except json.JSONDecodeError as e:
        return None, f"invalid JSON: {e.msg} at char {e.pos}"
    try:
        jsonschema.validate(turns, schema)
    except jsonschema.ValidationError as e:
        where = "/".join(map(str, e.absolute_path)) or "top level"
        return None, f"schema: {e.message[:120]} at {where}"
    return turns, None


def write_conversations(
    batch: dict[str, list],
    llm: LLM,
    *,
    seed: int = 0,
    min_turns: int = 3,
    max_turns: int = 8,
    repairs: int = 1,
    max_tokens: int = 512,
    template: str | None = None,
) -> tuple[list[dict], list[dict]]:
    """(LLaVA rows, rejects) for a batch of caption rows `{"id", "caption"}`."""
    if not 1 <= min_turns <= max_turns:
        raise InputError(f"need 1 <= min_turns <= max_turns, got {min_turns}, {max_turns}")
    if repairs < 0:
        raise InputError(f"repairs must be >= 0, got {repairs}")
    template = template or load_text("instruct", fields=("caption", "turns", "types"))
    schema = turn_schema(min_turns, max_turns)
    pending = {}
    for row_id, caption in zip(batch["id"], batch["caption"], strict=True):
        key = stable_int(seed, row_id)
        turns = min_turns + key % (max_turns - min_turns + 1)
        prompt = template.format(caption=caption, turns=turns, types=", ".join(TYPES))
        pending[row_id] = {"messages": [{"role": "user", "content": prompt}], "key": key, "caption": caption}
    rows, rejects = [], []
    for attempt in range(repairs + 1):
        if not pending:
            break
        ids = list(pending)
        params = [
            SamplingParams(temperature=0.7, max_tokens=max_tokens, seed=(pending[i]["key"] + attempt) % 2**31)
            for i in ids
        ]
        completions = llm.generate([pending[i]["messages"] for i in ids], params)
        for row_id, completion in zip(ids, completions, strict=True):
            state = pending[row_id]
            turns, reason = (None, completion.error) if completion.error else parse_turns(completion.text, schema)
            if turns is not None:
                qa = [(t["question"].strip(), t["answer"].strip()) for t in turns]
                rows.append(to_llava(row_id, qa, source="llm", types=[t["type"] for t in turns], attempts=attempt + 1))
                del pending[row_id]
            elif attempt < repairs:
                state["messages"] = state["messages"] + [
                    {"role": "assistant", "content": completion.text},
                    {
                        "role": "user",
                        "content": f"That reply was not valid ({reason}). "
                        "Reply with only the corrected JSON list.\nJSON:",
                    },
                ]
            else:
                rejects.append(
                    {"id": row_id, "caption": state["caption"], "reason": reason, "raw": completion.text[:2000]}
                )
    return rows, rejects
