"""Is an LLM-written answer supported by what the "image" shows? A lexical check against the row's context.

The context is the caption plus, where the row has them, its scene's object words (world scenes) or its boxes'
category names (COCO-style instances). Words are compared after lower-casing, dropping stop words and a crude
plural/verb-ending strip, so "dogs" meets "dog" and "sitting" meets "sits" only through the stem "sit".

- yes/no: "Yes" needs the question's content words in the context (asking "Is the toilet red?" of a caption that
  never says red is not grounded); "No" needs at least one of them missing from it (a denial of what the context
  states is a contradiction; a denial of what it does not state is accepted).
- multiple choice: four distinct options, and the chosen option's content words in the context.
- every turn but a summary asks a question (ends with "?"); short, reasoning and multiple-choice questions ask about
  the context: at least half of their content words in it.
- short, reasoning, summary: at least `min_share` of the answer's content words in the context (reasoning may add
  inference, so its share is lower), and at least one content word.
- unanswerable: the answer says so (the schema fixes it), and the question must not be answerable from the context:
  it is rejected when all its content words are in the context, or when it asks a colour or a number that the
  context states for what it names.

Long answers, where the caller passes their cosine to the context's text (LLaVA's detail and complex kinds, with
all-MiniLM-L6-v2), need a cosine of at least MIN_COSINE in place of the word share.

Where the row has a scene, what a turn asserts (a 'yes' question, the chosen option, a short, reasoning or summary
answer) is then checked against it exactly as caption variants are (captions/scene_check.py): world objects with
their attributes, numbers and relations, or COCO category nouns against the boxes' categories.

This is a proxy with known limits (synonyms and paraphrase fail it; a true word in a false relation passes it);
its rejects keep the reason, and the run report counts them.
"""

from __future__ import annotations

import re

STOP = set(
    "a an the is are was were be been being am do does did of in on at to for from by with without and or but not no "
    "yes this that these those there here it its it's they them their he she his her him we you i me my our your "
    "what which who whom whose where when why how many much some any all each every both either neither one ones "
    "can could would should will may might must shall has have had having as than then so such very also just only "
    "into onto over under above below near next up down out off about image picture photo photograph scene shown "
    "see seen visible appear appears look looks like kind type sort thing things something someone because likely "
    "probably perhaps show shows".split()
)  # fmt: skip
COLOUR_WORDS = set("red green blue yellow purple orange white black grey gray brown pink silver gold".split())
NUMBER_WORDS = set("one two three four five six seven eight nine ten single pair couple several".split())
WORD = re.compile(r"[a-z]+")


def stem(word: str) -> str:
    """shapes/shape -> shape, boxes -> box, berries -> berry, sitting/sits -> sit, parked -> park."""
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us", "is")) and len(word) > 3:
        return word[:-1]
    for suffix in ("ing", "ed"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            if len(word) > 3 and word[-1] == word[-2] and word[-1] not in "aeiouls":  # sitting -> sitt -> sit
                word = word[:-1]
            return word
    return word


def content_words(text: str) -> set[str]:
    return {stem(w) for w in WORD.findall(text.lower()) if w not in STOP and len(w) > 1}


def context_words(caption: str, scene=None) -> set[str]:
    """The caption's content words and the context's own (world attributes or box categories)."""
    from ..context import RowContext

    context = scene if isinstance(scene, RowContext) else RowContext.decode(scene)
    return content_words(caption) | content_words(" ".join(context.words()))


def _share(words: set[str], context: set[str]) -> float:
    return len(words & context) / len(words) if words else 1.0


def _missing(words: set[str], context: set[str]) -> str:
    return ", ".join(sorted(words - context))


# Long answers (LLaVA's detail and complex kinds) infer and paraphrase, so a share of context words is the wrong
# measure: GPT-4's own answers pass it 27% (detail) and 0% (complex) of the time. Their cosine to the image's
# captions under all-MiniLM-L6-v2 separates them instead: at least 0.44 for each of LLaVA's 90 GPT-4 answers against
# its own image's captions, a mean of 0.10-0.17 against the next image's (bench/instructions.py prints both rates).
MIN_COSINE = 0.4


def check_turn(
    turn: dict, context: set[str], *, min_share: float = 0.6, scene: dict | None = None,
    similarity: float | None = None,
) -> str | None:  # fmt: skip
    """Why `turn` ({type, question, answer[, options]}) is not grounded in `context` (and, where the row has one,
    its `scene`), or None when it is. `similarity`: the answer's cosine to the context's text, which replaces the
    word share for reasoning and summary answers where the caller has an encoder (long answers)."""
    reason = _check_words(turn, context, min_share, similarity)
    if reason is None and scene:
        return _check_scene(turn, scene)
    return reason


def _check_scene(turn: dict, scene: dict) -> str | None:
    """What the turn asserts, against the scene graph (world objects) or the boxes' categories: words can all be
    the caption's and still recombine into an object the scene lacks ("the orange square" of a scene whose square
    is green); the same exact check that filters caption variants (captions/scene_check.py) catches that."""
    from ..captions.scene_check import check_caption

    kind, answer = turn["type"], str(turn["answer"])
    if kind == "yes_no":
        claim = turn["question"] if answer.lower().startswith("yes") else ""
    elif kind == "multiple_choice":
        options = turn.get("options") or []
        claim = str(options["ABCD".index(answer[0])]) if answer[:1] in ("A", "B", "C", "D") and options else ""
    elif kind in ("short", "reasoning", "summary"):
        claim = answer
    else:
        return None
    check = check_caption(claim, scene) if claim else None
    if check is not None and check.wrong:
        return f"{kind} turn names what the scene lacks ({check.wrong[0]})"
    return None


def _check_words(turn: dict, context: set[str], min_share: float, similarity: float | None = None) -> str | None:
    kind, question, answer = turn["type"], turn["question"], str(turn["answer"])
    asked = content_words(question)
    if not question.strip().endswith("?") and kind != "summary":
        return "the question is not a question"
    # a long answer's question asks for inference ("What might be the purpose of this arrangement?"): with a
    # cosine for the answer, the answer carries the check (GPT-4's complex questions fail the word share 20 of 30)
    long_answer = similarity is not None and kind in ("reasoning", "summary")
    if kind not in ("unanswerable", "summary", "yes_no") and not long_answer and asked and _share(asked, context) < 0.5:
        return f"the question is not about the context ({_missing(asked, context)})"
    if kind == "yes_no":
        if answer.lower().startswith("yes") and _share(asked, context) < 1.0:
            return f"'yes' to a question about what the context does not state ({_missing(asked, context)})"
        if answer.lower().startswith("no") and asked and asked <= context:
            return "'no' to a question about what the context states"
        return None
    if kind == "multiple_choice":
        options = [str(o).strip().lower() for o in turn.get("options", [])]
        if len(set(options)) != len(options):
            return "repeated options"
        chosen = options["ABCD".index(answer[0])] if answer[:1] in ("A", "B", "C", "D") and options else ""
        words = content_words(chosen)
        if not words or _share(words, context) < 1.0:
            return f"the chosen option is not in the context ({_missing(words, context) or 'empty'})"
        return None
    if kind == "unanswerable":
        if asked and asked <= context:
            return "'unanswerable' question about what the context states"
        raw = set(WORD.findall(question.lower()))
        named = asked - {"colour", "color", "many", "number"}
        if {"colour", "color"} & raw and COLOUR_WORDS & context and named & context:
            return "'unanswerable' colour question that the context answers"
        if "many" in raw and NUMBER_WORDS & context and named & context:
            return "'unanswerable' count question that the context answers"
        return None
    said = content_words(answer)
    if not said:
        return f"{kind} answer says nothing ({answer[:40]!r})"
    if long_answer:
        if similarity < MIN_COSINE:
            return f"{kind} answer not close to the context (cosine {similarity:.2f} < {MIN_COSINE})"
        return None
    needed = min_share * (0.8 if kind == "reasoning" else 1.0)
    if _share(said, context) < needed:
        return f"{kind} answer not supported by the context ({_missing(said, context)})"
    return None
