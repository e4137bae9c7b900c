"""Conversations in the LLaVA format: `{"id", "conversations": [{"from": "human" | "gpt", "value"}]}`,
`<image>` in the first human turn, roles alternating, human first."""

from __future__ import annotations

IMAGE = "<image>"


def to_llava(row_id: str, turns: list[tuple[str, str]], **extra) -> dict:
    """A LLaVA row from (question, answer) turns."""
    conversations = []
    for k, (question, answer) in enumerate(turns):
        conversations.append({"from": "human", "value": f"{IMAGE}\n{question}" if k == 0 else question})
        conversations.append({"from": "gpt", "value": answer})
    return {"id": row_id, "conversations": conversations, **extra}


def conversation_error(row: dict) -> str | None:
    """Why `row` is not a valid LLaVA conversation, or None when it is."""
    turns = row.get("conversations") if isinstance(row, dict) else None
    if not isinstance(row, dict) or not isinstance(row.get("id"), str) or not row["id"]:
        return "missing id"
    if not isinstance(turns, list) or len(turns) < 2 or len(turns) % 2:
        return "conversations must be a non-empty list of human/gpt pairs"
    for k, turn in enumerate(turns):
        if not isinstance(turn, dict) or turn.get("from") != ("human", "gpt")[k % 2]:
            return f"turn {k} should be from {('human', 'gpt')[k % 2]}"
        if not isinstance(turn.get("value"), str) or not turn["value"].strip():
            return f"turn {k} is empty"
        if (IMAGE in turn["value"]) != (k == 0):
            return f"{IMAGE} must appear in the first human turn only (turn {k})"
    return None
