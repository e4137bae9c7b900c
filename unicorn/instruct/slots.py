"""What a caption states, as the slots of the conversation schema: its things, and short facts about them.

The 270M embedded model, left to write its own questions, asks about names, ages and brands the caption never
gives, or copies the few-shot example (48% of 50 real COCO captions kept after grounding). Under `questions:
"slots"` the writer's schema lets it choose its questions and answers from what the caption itself states, so what
it picks is grounded by construction, and what it writes freely (reasoning and summary answers) is limited to the
caption's own words plus a few function words. A served larger model can take `questions: "free"`.

A caption is read with a shallow, documented parse (no tagger): runs of content words are noun chunks ("black honda
motorcycle"), words ending in -ing are actions, and a preposition followed by a chunk is a place. From these:
- colour facts: a chunk holding a colour word ("What colour is the honda motorcycle?" -> "black");
- count facts: a chunk led by a number ("How many women are there?" -> "two");
- place facts: a chunk followed (maybe after an action) by a place ("Where is the honda motorcycle?" ->
  "in front of a garage");
- action facts: a chunk followed by an -ing word ("What is the woman doing?" -> "sitting on a bench").
Answers are spans of the caption, lower-cased. The parse misreads some captions (a noun ending in -ing not in the
exception list, a verb ending in -s); the grounding check still runs after decoding and counts what it rejects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .grounding import COLOUR_WORDS, NUMBER_WORDS, STOP

QUESTIONS = ("slots", "free")  # the writer's question modes (instruct.questions): these slots, or the model's own
PREPOSITIONS = ("in front of", "next to", "on top of", "in between", "between", "in", "on", "at", "near", "under",
                "beside", "behind", "inside", "by", "above", "below", "over", "along", "across", "through",
                "around", "against", "outside", "underneath", "beneath")  # fmt: skip
NOT_ACTIONS = set("building ceiling painting clothing evening morning wedding railing sibling pudding icing ring "
                  "king thing string ping swing wing".split())  # fmt: skip
DETERMINERS = {"a", "an", "the", "some", "two", "three", "four", "five", "several", "many"}
# function words a free answer may add to the caption's own words (all in grounding.STOP, so they never count
# against an answer's share of context words)
GLUE = ("the a an is are it they there this that and with because likely probably perhaps so to be for of in on "
        "at by can could may might its their has have very some").split()  # fmt: skip
TOKEN = re.compile(r"[A-Za-z][A-Za-z'-]*|\d+")


@dataclass(frozen=True)
class Fact:
    """One short question a caption answers, with the answer as the caption words it."""

    kind: str  # colour | count | place | action
    question: str
    answer: str


@dataclass(frozen=True)
class CaptionSlots:
    """What the schema may offer for one caption: its things (noun chunks, and their heads without colour or number
    words), the facts about them, and its vocabulary for free answers."""

    things: tuple[str, ...]
    heads: tuple[str, ...]
    facts: tuple[Fact, ...]
    words: tuple[str, ...]


PREPOSITION_WORDS = {w for p in PREPOSITIONS for w in p.split()}
PLURALS = {"men", "women", "people", "children", "sheep", "geese", "mice", "teeth", "feet"}


def _is_action(word: str) -> bool:
    return word.endswith("ing") and len(word) > 4 and word not in NOT_ACTIONS


def _is_participle(word: str) -> bool:  # "parked", "seated": between a thing and where it is
    return word.endswith("ed") and len(word) > 4


def _breaks(word: str) -> bool:
    """Ends a noun chunk: a stop word, a verb form or a preposition."""
    return word in STOP or word in PREPOSITION_WORDS or _is_action(word) or _is_participle(word)


def _be(head: str) -> str:
    last = head.split()[-1]
    return "are" if last in PLURALS or (last.endswith("s") and not last.endswith(("ss", "us", "is"))) else "is"


def _chunk_end(tokens: list[str], i: int) -> int:
    """The index after the noun chunk that starts at token i (i itself when none does)."""
    while i < len(tokens) and not _breaks(tokens[i]):
        i += 1
    return i


def _object_at(tokens: list[str], i: int) -> tuple[str, int] | None:
    """(an optional determiner and a noun chunk starting at token i, the index after it), or None: what an action
    acts on ("an odd hat" in "wearing an odd hat")."""
    j = i + (1 if i < len(tokens) and tokens[i] in DETERMINERS else 0)
    end = _chunk_end(tokens, j)
    return (" ".join(tokens[i:end]), end) if end > j else None


def _place_at(tokens: list[str], i: int) -> tuple[str, int] | None:
    """(the place phrase starting at token i, the index after it), or None: a preposition, then what
    `_object_at` reads."""
    for prep in PREPOSITIONS:
        words = prep.split()
        if tokens[i : i + len(words)] == words:
            target = _object_at(tokens, i + len(words))
            return (" ".join(tokens[i : target[1]]), target[1]) if target else None
    return None


def caption_slots(caption: str) -> CaptionSlots:
    tokens = [t.lower() for t in TOKEN.findall(caption)]
    things, heads, facts = [], [], []
    i = 0
    while i < len(tokens):
        if _breaks(tokens[i]) or (tokens[i] in NUMBER_WORDS and i + 1 == len(tokens)):
            i += 1
            continue
        start, i = i, _chunk_end(tokens, i)
        chunk = tokens[start:i]
        head_words = [w for w in chunk if w not in COLOUR_WORDS and w not in NUMBER_WORDS and not w.isdigit()]
        if not head_words:
            continue
        head = " ".join(head_words)
        things.append(" ".join(chunk))
        heads.append(head)
        for w in chunk:
            if w in COLOUR_WORDS:
                facts.append(Fact("colour", f"What colour {_be(head)} the {head}?", w))
        if chunk[0] in NUMBER_WORDS or chunk[0].isdigit() or (start and tokens[start - 1] in NUMBER_WORDS - {"one"}):
            number = chunk[0] if chunk[0] in NUMBER_WORDS or chunk[0].isdigit() else tokens[start - 1]
            facts.append(Fact("count", f"How many {head} are there?", number))
        j = i + (1 if i < len(tokens) and tokens[i] in ("is", "are") else 0)
        if j < len(tokens) and _is_action(tokens[j]):
            place = _place_at(tokens, j + 1) or _object_at(tokens, j + 1)
            action = tokens[j] + (" " + place[0] if place else "")
            place = place if place and place[0].split()[0] in PREPOSITION_WORDS else None
            facts.append(Fact("action", f"What {_be(head)} the {head} doing?", action))
        else:
            place = _place_at(tokens, j + (1 if j < len(tokens) and _is_participle(tokens[j]) else 0))
        if place:
            facts.append(Fact("place", f"Where {_be(head)} the {head}?", place[0]))
    words = tuple(dict.fromkeys([*tokens, *GLUE]))
    unique = list(dict.fromkeys(zip(things, heads, strict=True)))
    return CaptionSlots(
        things=tuple(t for t, _ in unique), heads=tuple(dict.fromkeys(h for _, h in unique)),
        facts=tuple(dict.fromkeys(facts)), words=words,
    )  # fmt: skip
