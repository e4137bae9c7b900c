"""LLM-written multi-turn conversations grounded only in the caption (Unicorn's multiple choice, short QA and
complex reasoning; CoSyn's yes/no, summary and unanswerable), as JSON validated against a schema, with a
bounded repair-and-retry loop. Rows that still fail are returned as rejects with the reason."""

from __future__ import annotations

import json
import re

import jsonschema

from ..errors import InputError
from ..hashing import stable_int
from ..llm import LLM, SamplingParams
from ..prompts import few_shot_messages, load_text
from .conversations import to_llava
from .grounding import STOP, check_turn, context_words
from .slots import PLURALS, QUESTIONS, caption_slots

TYPES = ("multiple_choice", "short", "reasoning", "yes_no", "summary", "unanswerable")
UNANSWERABLE = "That cannot be told from the image."
QUESTION = {"type": "string", "minLength": 8, "maxLength": 80}
ANSWER = {"type": "string", "minLength": 1, "maxLength": 80}
# the final check is looser than what a free-question schema decodes under: slot questions name the caption's
# things, and slot free answers run to 25 of its words
FINAL_QUESTION = {"type": "string", "minLength": 8, "maxLength": 160}
FINAL_ANSWER = {"type": "string", "minLength": 1, "maxLength": 240}


def turn_schema(min_turns: int, max_turns: int) -> dict:
    """The loose schema every conversation must pass after decoding (the final check): `min_turns`..`max_turns`
    turns of the known types, with the closed answers (yes/no, an option letter, the 'cannot be told' line)."""

    option = {"type": "string", "minLength": 1, "maxLength": 60}
    return {
        "type": "array",
        "minItems": min_turns,
        "maxItems": max_turns,
        "items": {
            "anyOf": [
                _turn({"enum": ["short", "reasoning", "summary"]}, FINAL_QUESTION, FINAL_ANSWER),
                _turn("yes_no", FINAL_QUESTION, {"enum": ["Yes", "No"]}),
                _turn("multiple_choice", FINAL_QUESTION, {"enum": ["A", "B", "C", "D"]},
                      options={"type": "array", "items": option, "minItems": 4, "maxItems": 4}),
                _turn("unanswerable", FINAL_QUESTION, {"const": UNANSWERABLE}),
            ]
        },
    }  # fmt: skip


def _turn(kind: str | dict, question: dict, answer: dict, **extra) -> dict:
    """One turn's object schema: its type (a name, or a schema of names), question, extra fields, answer, in that
    order (the order the reply is decoded in)."""
    kind = {"const": kind} if isinstance(kind, str) else kind
    properties = {"type": kind, "question": question, **extra, "answer": answer}
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _choice(question: dict, right: dict, others: list[str], slot: int) -> dict:
    """A multiple-choice turn: the right option in `slot` (the answer letter), the other three fixed."""
    options = [right if k == slot else {"const": others[k - (k > slot)]} for k in range(4)]
    return _turn(
        "multiple_choice",
        question,
        {"const": "ABCD"[slot]},
        options={"type": "array", "prefixItems": options, "minItems": 4, "maxItems": 4, "items": False},
    )


def _absent(caption: str, key: int) -> list[str]:
    """Four distinct distractors the caption does not mention, a seeded run of consecutive ones per row."""
    absent = [d for d in DISTRACTORS if d.split()[-1] not in caption.lower()]
    return [absent[(key + k) % len(absent)] for k in range(4)]


DISTRACTORS = ("a dog", "a car", "a tree", "a chair", "a bicycle", "a cup", "a window", "a boat", "a horse",
               "a book", "a clock", "a bench", "a bird", "an umbrella", "a lamp", "a door")  # fmt: skip


def context_phrases(caption: str, limit: int = 24) -> list[str]:
    """Answers that a caption grounds by construction: its runs of content words ("red couch", "window") and its
    single content words, in order of appearance."""
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", caption)
    runs, run = [], []
    for w in [*words, "the"]:
        if w.lower() in STOP:
            if run:
                runs.append(" ".join(run))
            run = []
        else:
            run.append(w.lower())
    singles = [w.lower() for w in words if w.lower() not in STOP]
    return list(dict.fromkeys(runs + singles))[:limit] or [caption.strip()[:60]]


def plan_types(key: int, turns: int) -> list[str]:
    """The seeded question types of a conversation, in order: distinct while they last, a different mix per row."""
    import random

    rng = random.Random(key)
    return [kind for _ in range(-(-turns // len(TYPES))) for kind in rng.sample(TYPES, len(TYPES))][:turns]


def decoding_schema(types: list[str], caption: str, key: int) -> dict:
    """The schema a reply is decoded under: one item per planned type, in order, with answers closed where they can
    be: a short answer is one of the caption's phrases; a multiple choice has one option drawn from the caption's
    phrases, in a seeded slot that the answer letter names, and three distinct distractors the caption does not
    mention; yes/no and unanswerable answers are fixed strings. What is left open (questions, reasoning and
    summary answers) is bounded and checked for grounding afterwards."""
    phrases = context_phrases(caption)
    answers = {
        "short": {"enum": phrases},
        "reasoning": ANSWER,
        "summary": ANSWER,
        "yes_no": {"enum": ["Yes", "No"]},
        "unanswerable": {"const": UNANSWERABLE},
    }
    # a multiple choice's right option sits in a seeded slot, each other slot k holds the k-th distractor
    right = key % 4
    others = [d for k, d in enumerate(_absent(caption, key)) if k != right]
    items = [_choice(QUESTION, {"enum": phrases}, others, right) if kind == "multiple_choice"
             else _turn(kind, QUESTION, answers[kind]) for kind in types]  # fmt: skip
    return {"type": "array", "prefixItems": items, "minItems": len(types), "maxItems": len(types), "items": False}


# ordered distractor palettes for colour and count choices (grounding.COLOUR_WORDS and NUMBER_WORDS are sets, whose
# order varies with the hash seed, and hold synonyms: "grey"/"gray", "pair"/"couple")
COLOURS = ("red", "green", "blue", "yellow", "white", "black", "brown", "grey", "orange", "purple", "pink")
NUMBERS = ("one", "two", "three", "four", "five", "six")
UNANSWERABLE_ASKS = ("What is the name of the {}?", "What brand is the {}?", "How old is the {}?")
REASONING_ASKS = ("Why might the {} be there?", "What could the {} be used for?")
SUMMARY_ASKS = ("Describe the image briefly.", "What does the image show?")


BOX_LINE = re.compile(r"^\s*([A-Za-z][A-Za-z ]*): \[")


def _there(thing: str) -> str:
    """'Is there a cat in the image?' / 'Are there two women in the image?'"""
    first, last = thing.split()[0], thing.split()[-1]
    if first in NUMBERS or first.isdigit() or (last.endswith("s") and not last.endswith("ss")) or last in PLURALS:
        return f"Are there {thing} in the image?"
    return f"Is there {'an' if thing[0] in 'aeiou' else 'a'} {thing} in the image?"


def _words_pattern(words: tuple[str, ...], at_most: int = 24) -> dict:
    """A free answer made only of these words: the caption's own, and function words (slots.GLUE)."""
    alternatives = "|".join(w for w in words if re.fullmatch(r"[a-z0-9']+", w))
    return {"type": "string", "pattern": f"^({alternatives})( ({alternatives})){{1,{at_most}}}$"}


def slot_schema(types: list[str], caption: str, key: int) -> dict:
    """The schema of `questions: "slots"` (see instruct/slots.py): every question is one the caption can answer or,
    for `unanswerable`, one it cannot, drawn from the caption's things and facts; short, yes/no and multiple-choice
    answers are bound to their question (the fact's answer; 'Yes' to a thing the caption names, 'No' to one it
    does not; the right option in a seeded slot among distractors of the same kind); reasoning and summary answers
    are the model's own words, limited to the caption's words and function words."""
    lines = [(BOX_LINE.match(line), line) for line in caption.splitlines()]  # LLaVA's context: captions + boxes
    slots = caption_slots(" ".join(line for m, line in lines if not m))
    categories = [m[1].strip().lower() for m, _ in lines if m]
    things = list(dict.fromkeys([*slots.things, *categories])) or [caption.strip()[:60]]
    heads = list(dict.fromkeys([*slots.heads, *categories])) or things
    absent = _absent(caption, key)
    slot = key % 4
    free = _words_pattern(slots.words)
    context = context_words(caption)  # "How old is the old man?" is not unanswerable: only what the check accepts
    unanswerable = [
        q
        for q in (a.format(h) for h in heads for a in UNANSWERABLE_ASKS)
        if check_turn({"type": "unanswerable", "question": q, "answer": UNANSWERABLE}, context) is None
    ]
    unanswerable = unanswerable or ["What is the name of the photographer?"]
    alternatives: dict[str, list[dict]] = {
        "short": [_turn("short", {"const": f.question}, {"const": f.answer}) for f in slots.facts]
        + [_turn("short", {"const": "What is one thing the image shows?"}, {"enum": things})],
        "yes_no": [_turn("yes_no", {"enum": [_there(t) for t in things]}, {"const": "Yes"}),
                   _turn("yes_no", {"enum": [_there(d.split(maxsplit=1)[1]) for d in absent]}, {"const": "No"})]
        + [_turn("yes_no", {"const": f"Is the {f.question.split(' the ', 1)[1][:-1]} {f.answer}?"}, {"const": "Yes"})
           for f in slots.facts if f.kind == "colour"],
        "multiple_choice": [_choice({"const": "Which of these does the image show?"}, {"enum": things}, absent, slot)]
        + [_choice({"const": f.question}, {"const": f.answer},
                   [c for c in (COLOURS if f.kind == "colour" else NUMBERS) if c != f.answer][key % 3:][:3], slot)
           for f in slots.facts if f.kind in ("colour", "count") and f.answer in COLOURS + NUMBERS],
        "unanswerable": [_turn("unanswerable", {"enum": unanswerable}, {"const": UNANSWERABLE})],
        "reasoning": [_turn("reasoning", {"enum": [a.format(h) for h in heads for a in REASONING_ASKS]}, free)],
        "summary": [_turn("summary", {"enum": list(SUMMARY_ASKS)}, free)],
    }  # fmt: skip
    items = [{"anyOf": alternatives[kind]} if len(alternatives[kind]) > 1 else alternatives[kind][0] for kind in types]
    return {"type": "array", "prefixItems": items, "minItems": len(types), "maxItems": len(types), "items": False}


SCHEMAS = {"slots": slot_schema, "free": decoding_schema}


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


def as_qa(turn: dict) -> tuple[str, str]:
    """A schema turn as LLaVA's (question, answer) text: options listed under the question, answers as sentences."""
    question, answer = turn["question"].strip(), str(turn["answer"]).strip()
    if turn["type"] == "multiple_choice":
        options = turn["options"]
        question += "\n" + "\n".join(f"{letter}. {o}" for letter, o in zip("ABCD", options, strict=True))
        answer = f"{answer}. {options['ABCD'.index(answer)]}"
    elif turn["type"] == "yes_no":
        answer += "."
    elif turn["type"] in ("reasoning", "summary") and answer:  # slot answers are lower-case words
        answer = answer[0].upper() + answer[1:] + ("" if answer[-1] in ".!?" else ".")
    return question, answer


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
    constrained: bool = True,
    min_grounded_turns: int = 2,
    questions: str = "slots",
) -> tuple[list[dict], list[dict]]:
    """(LLaVA rows, rejects) for a batch of caption rows `{"id", "caption"[, "scene"]}` (scene: a dict or None).

    Each row asks for a seeded number of turns under `turn_schema`, enforced while decoding where `constrained`
    (every backend: see SamplingParams.json_schema) and validated after it always; a reply that fails is repaired
    at most `repairs` times. Each turn is then checked against the row's context (`grounding.check_turn`): turns
    that fail are dropped (kept under `dropped` with the reason), and a conversation keeps its place only with at
    least `min_grounded_turns` grounded turns left. `questions`: "slots" decodes under `slot_schema` (questions and
    short answers drawn from what the caption states), "free" under `decoding_schema` (the model's own questions)."""
    if questions not in QUESTIONS:
        raise InputError(f"questions must be one of {', '.join(QUESTIONS)}, got {questions!r}")
    if not 1 <= min_turns <= max_turns:
        raise InputError(f"need 1 <= min_turns <= max_turns, got {min_turns}, {max_turns}")
    if repairs < 0:
        raise InputError(f"repairs must be >= 0, got {repairs}")
    template = template or load_text("instruct", fields=("caption", "types"))
    scenes = batch.get("scene") or [None] * len(batch["id"])
    pending = {}
    for row_id, caption, scene in zip(batch["id"], batch["caption"], scenes, strict=True):
        key = stable_int(seed, row_id)
        turns = min_turns + key % (max_turns - min_turns + 1)
        types = plan_types(key, turns)
        prompt = template.format(caption=caption, turns=turns, types=", ".join(types))
        pending[row_id] = {"messages": few_shot_messages(prompt), "key": key, "caption": caption, "turns": turns,
                           "context": context_words(caption, scene), "scene": scene,
                           "schema": json.dumps(SCHEMAS[questions](types, caption, key)) if constrained else None,
                           }  # fmt: skip
    rows, rejects = [], []
    for attempt in range(repairs + 1):
        if not pending:
            break
        ids = list(pending)
        params = [
            SamplingParams(
                temperature=0.7,
                max_tokens=max_tokens,
                seed=(pending[i]["key"] + attempt) % 2**31,
                json_schema=pending[i]["schema"],
            )
            for i in ids
        ]
        completions = llm.generate([pending[i]["messages"] for i in ids], params)
        for row_id, completion in zip(ids, completions, strict=True):
            state = pending[row_id]
            schema = turn_schema(state["turns"], state["turns"])
            turns, reason = (None, completion.error) if completion.error else parse_turns(completion.text, schema)
            if turns is not None:
                verdicts = [check_turn(t, state["context"], scene=state["scene"]) for t in turns]
                kept = [t for t, v in zip(turns, verdicts, strict=True) if v is None]
                dropped = [{**t, "reason": v} for t, v in zip(turns, verdicts, strict=True) if v is not None]
                if len(kept) >= min(min_grounded_turns, len(turns)):
                    rows.append(to_llava(row_id, [as_qa(t) for t in kept], source="llm",
                                         types=[t["type"] for t in kept], attempts=attempt + 1,
                                         dropped=dropped))  # fmt: skip
                    del pending[row_id]
                    continue
                reason = f"ungrounded: {len(kept)} of {len(turns)} turns grounded; {dropped[0]['reason']}"
            if attempt < repairs:  # a bounded retry: a broken reply, or one with too few grounded turns
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
