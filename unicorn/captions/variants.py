"""Caption variants: k per seed in a dense, detailed style, each written in the voice of a persona (`diversify`).

A batch function: a batch of seed rows in, a batch of variant rows out (raw response kept beside the
parsed caption, so a better parser can be applied later without asking the model again).
"""

from __future__ import annotations

from ..errors import InputError
from ..hashing import stable_int
from ..llm import LLM, SamplingParams
from ..prompts import few_shot_messages, load_lines, load_text


def parse_variant(raw: str) -> str:
    """The caption a base model wrote: its first non-empty line, without labels or quotes."""
    for line in raw.splitlines():
        line = line.strip()
        if line:
            for label in ("Description:", "Caption:"):
                line = line.removeprefix(label).strip()
            return line.strip("\"'“” ")
    return ""


def diversify(
    batch: dict[str, list],
    llm: LLM,
    *,
    k: int = 3,
    template: str | None = None,
    personas: list[str] | None = None,
    seed: int = 0,
    max_tokens: int = 96,
    temperature: float = 0.9,
) -> dict[str, list]:
    """Rows {id, seed_id, seed, persona, caption, raw, error} for k variants of each seed in `batch`."""
    if k < 1:
        raise InputError(f"variants per seed must be >= 1, got {k}")
    template = template or load_text("caption", fields=("seed", "persona"))
    personas = personas or load_lines("personas")
    out: dict[str, list] = {c: [] for c in ("id", "seed_id", "seed", "persona", "caption", "raw", "error")}
    requests, params = [], []
    for seed_id, text in zip(batch["id"], batch["text"], strict=True):
        for j in range(k):
            key = stable_int(seed, seed_id, j)
            persona = personas[key % len(personas)]
            requests.append(few_shot_messages(template.format(seed=text, persona=persona)))
            params.append(
                SamplingParams(temperature=temperature, max_tokens=max_tokens, seed=key % 2**31, stop=("\n",))
            )
            out["id"].append(f"{seed_id}#v{j}")
            out["seed_id"].append(seed_id)
            out["seed"].append(text)
            out["persona"].append(persona)
    for completion in llm.generate(requests, params):
        out["raw"].append(completion.text)
        out["caption"].append(parse_variant(completion.text))
        out["error"].append(completion.error)
    return out
