"""Caption filters, applied as a funnel so each removal is counted against the first filter that failed.

Cheap text checks run first (length, non-text, repetition, language); then faithfulness, the cosine
between the variant and its seed in a sentence-embedding space, which catches a small model that
drifts from what the seed says; then, optionally, an LLM judge of "could this be a photograph" (SynthVLM).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InputError
from ..llm import LLM, SamplingParams
from ..prompts import load_text

WORD = re.compile(r"[A-Za-z']+")
# the commonest English function words; real English prose is at least ~15% of them
ENGLISH = frozenset(
    "a an the of in on at to with and or but is are was were be by for from as it its this that these those "
    "there their his her he she they them near next behind under over above below into onto while some two "
    "one three several his her has have".split()
)


@dataclass(frozen=True)
class FilterConfig:
    min_words: int = 8
    max_words: int = 120
    min_text_share: float = 0.9  # letters, digits, spaces and ordinary punctuation
    max_repetition: float = 0.25  # share of repeated word trigrams
    min_english: float = 0.12  # share of common English function words
    min_faithfulness: float = 0.5  # cosine of variant and seed sentence embeddings
    judge: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.min_words <= self.max_words:
            raise InputError(f"need 1 <= min_words <= max_words, got {self.min_words}, {self.max_words}")
        for name in ("min_text_share", "max_repetition", "min_english"):
            if not 0 <= getattr(self, name) <= 1:
                raise InputError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not -1 <= self.min_faithfulness <= 1:
            raise InputError(f"min_faithfulness must be in [-1, 1], got {self.min_faithfulness}")


def text_share(text: str) -> float:
    ok = sum(c.isalnum() or c.isspace() or c in ".,;:!?'\"-()" for c in text)
    return ok / max(len(text), 1)


def repetition(text: str) -> float:
    words = text.lower().split()
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def english_share(text: str) -> float:
    words = [w.lower() for w in WORD.findall(text)]
    return sum(w in ENGLISH for w in words) / max(len(words), 1)


FUNNEL = ("error", "length", "non_text", "repetition", "language", "faithfulness", "scene", "facts", "judge")


def apply_filters(
    batch: dict[str, list],
    config: FilterConfig,
    *,
    encoder=None,
    judge: LLM | None = None,
    scene_wrong: list[bool] | None = None,
    scene_thin: list[bool] | None = None,
) -> dict[str, list]:
    """Adds score columns and `reject` (the first failed filter, or None) to a batch of variant rows, in FUNNEL
    order: the free checks first, so the paid judge never sees a row they reject. `scene_wrong`: per row, whether
    the scene check (captions/scene_check.py, run by the caller, which holds the rows' contexts) found a wrong
    mention; `scene_thin`: whether it states fewer of the scene's facts than the caller requires (`facts`)."""
    n = len(batch["caption"])
    reject: list[str | None] = [None] * n
    scores = {"words": [], "text_share": [], "repetition": [], "english": [], "faithfulness": [None] * n}
    for i, (text, error) in enumerate(zip(batch["caption"], batch["error"], strict=True)):
        words = len(text.split())
        s = (text_share(text), repetition(text), english_share(text))
        scores["words"].append(words)
        scores["text_share"].append(round(s[0], 4))
        scores["repetition"].append(round(s[1], 4))
        scores["english"].append(round(s[2], 4))
        if error:
            reject[i] = "error"
        elif not config.min_words <= words <= config.max_words:
            reject[i] = "length"
        elif s[0] < config.min_text_share:
            reject[i] = "non_text"
        elif s[1] > config.max_repetition:
            reject[i] = "repetition"
        elif s[2] < config.min_english:
            reject[i] = "language"
    alive = [i for i in range(n) if reject[i] is None]
    if alive and encoder is not None:
        variants = encoder.encode_text([batch["caption"][i] for i in alive])
        seeds = encoder.encode_text([batch["seed"][i] for i in alive])
        for i, cos in zip(alive, (variants * seeds).sum(1), strict=True):
            scores["faithfulness"][i] = round(float(cos), 4)
            if cos < config.min_faithfulness:
                reject[i] = "faithfulness"
    alive = [i for i in alive if reject[i] is None]
    for flags, reason in ((scene_wrong, "scene"), (scene_thin, "facts")):
        if flags is not None:
            for i in alive:
                if flags[i]:
                    reject[i] = reason
            alive = [i for i in alive if reject[i] is None]
    if alive and config.judge:
        if judge is None:
            raise InputError("the photograph judge is on but no judge LLM was given")
        template = load_text("judge", fields=("caption",))
        requests = [[{"role": "user", "content": template.format(caption=batch["caption"][i])}] for i in alive]
        answers = judge.generate(requests, SamplingParams(temperature=0.0, max_tokens=3, stop=("\n",)))
        for i, answer in zip(alive, answers, strict=True):
            if not answer.text.strip().lower().startswith("yes"):
                reject[i] = "judge"
    return {**batch, **scores, "reject": reject}


def funnel_counts(rejects: list[str | None]) -> dict[str, int]:
    """How many rows each filter removed, plus how many passed."""
    counts = {name: 0 for name in FUNNEL}
    for r in rejects:
        if r is not None:
            counts[r] += 1
    counts["passed"] = sum(r is None for r in rejects)
    return counts
