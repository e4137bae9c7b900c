"""LLaVA's three kinds of instruction data, written by an LLM from symbolic context (captions + object boxes).

LLaVA (Liu et al. 2023) had a text-only GPT-4 write, from five captions and the boxes of each image: `conv`
(multi-turn QA), `detail` (a detailed description) and `complex` (a question needing reasoning, with its answer).
`conv` is `writer.write_conversations` with the context as its description; `detail` and `complex` are one turn
each, asked under a small JSON Schema (enforced while decoding), their answers checked against the context
(`grounding.check_turn` as a summary / a reasoning answer: with an `encoder`, by their cosine to the captions, since
long answers infer and paraphrase; always against the boxes' categories).
"""

from __future__ import annotations

import json

from ..context import RowContext
from ..errors import InputError
from ..hashing import stable_int
from ..llm import LLM, SamplingParams
from ..prompts import few_shot_messages, load_text
from .conversations import to_llava
from .grounding import check_turn, context_words
from .writer import write_conversations

KINDS = ("conv", "detail", "complex")
# LLaVA's detail instruction is one of a list of paraphrases; these are our own.
DETAIL_QUESTIONS = (
    "Describe the image in detail.",
    "What is happening in this image? Describe it thoroughly.",
    "Give a detailed description of the scene.",
    "Explain the contents of the image in detail.",
)
LONG = {"type": "string", "minLength": 20, "maxLength": 320}


def kind_schema(kind: str) -> dict:
    properties = {"answer": LONG} if kind == "detail" else {"question": {"type": "string", "minLength": 8,
                                                                         "maxLength": 120}, "answer": LONG}  # fmt: skip
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def context_text(scene, caption: str) -> str:
    """LLaVA's symbolic context: the captions, then one `category: [x1, y1, x2, y2]` line per object."""
    context = RowContext.decode(scene)
    if not context.is_boxes:
        return caption
    lines = context.captions(caption)
    lines += [f"{i['category']}: [{', '.join(f'{v:.2f}' for v in i['bbox'])}]" for i in context.instances]
    return "\n".join(lines)


def captions_text(scene, caption: str) -> str:
    """The row's captions as one text (LLaVA's five, or the one caption): what a long answer is compared with."""
    return " ".join(RowContext.decode(scene).captions(caption))


def answer_cosines(encoder, answers: list[str], references: list[str]) -> list[float]:
    """Each answer's cosine to its reference text under `encoder` (unit-norm rows): `check_turn`'s `similarity`."""
    if not answers:
        return []
    a = encoder.encode_text(answers, progress=False)
    b = encoder.encode_text(references, progress=False)
    return [float(v) for v in (a * b).sum(1)]


def write_kinds(
    batch: dict[str, list], llm: LLM, kinds: tuple[str, ...] = KINDS, *, seed: int = 0, max_tokens: int = 160,
    min_turns: int = 3, max_turns: int = 3, repairs: int = 1, constrained: bool = True, min_grounded_turns: int = 2,
    questions: str = "slots", encoder=None,
) -> tuple[list[dict], list[dict]]:  # fmt: skip
    """(LLaVA rows with a `kind`, rejects) for rows `{"id", "caption", "scene"}` (scene: a dict or None). `encoder`
    (a sentence encoder, e.g. all-MiniLM-L6-v2): detail and complex answers are then checked by their cosine to the
    captions (grounding.MIN_COSINE) instead of their share of context words."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise InputError(f"unknown instruction kind {unknown[0]!r}; kinds are {', '.join(KINDS)}")
    contexts = [context_text(s, c) for s, c in zip(batch["scene"], batch["caption"], strict=True)]
    rows, rejects = [], []
    if "conv" in kinds:
        conv, failed = write_conversations(
            {"id": batch["id"], "caption": contexts, "scene": batch["scene"]}, llm, seed=seed, min_turns=min_turns,
            max_turns=max_turns, repairs=repairs, max_tokens=max(max_tokens, 200), constrained=constrained,
            min_grounded_turns=min_grounded_turns, questions=questions,
        )  # fmt: skip
        rows += [{**r, "id": f"{r['id']}#conv", "image": r["id"], "kind": "conv"} for r in conv]
        rejects += [{**r, "kind": "conv"} for r in failed]
    for kind in (k for k in kinds if k != "conv"):
        template = load_text(f"llava_{kind}", fields=("context",))
        schema = json.dumps(kind_schema(kind))
        requests, params = [], []
        for row_id, context in zip(batch["id"], contexts, strict=True):
            key = stable_int(seed, row_id, kind)
            requests.append(few_shot_messages(template.format(context=context)))
            params.append(SamplingParams(temperature=0.7, max_tokens=max_tokens, seed=key % 2**31, json_schema=schema))
        parsed = []
        for k, completion in enumerate(llm.generate(requests, params)):
            row_id = batch["id"][k]
            key = stable_int(seed, row_id, kind)
            reply, reason = None, completion.error
            if reason is None:
                try:
                    reply = json.loads(completion.text)
                except json.JSONDecodeError as e:
                    reason = f"invalid JSON: {e.msg}"
            if not isinstance(reply, dict) or not isinstance(reply.get("answer"), str):
                reason = reason or "schema: not an answer object"
                rejects.append({"id": row_id, "kind": kind, "reason": reason,
                                "raw": completion.text[:2000]})  # fmt: skip
                continue
            parsed.append((k, key, reply, completion))
        similar = [None] * len(parsed)
        if encoder is not None:  # the answer's cosine to the row's captions (grounding.MIN_COSINE)
            similar = answer_cosines(
                encoder,
                [reply["answer"] for _, _, reply, _ in parsed],
                [captions_text(batch["scene"][k], batch["caption"][k]) for k, _, _, _ in parsed],
            )
        for (k, key, reply, completion), similarity in zip(parsed, similar, strict=True):
            row_id = batch["id"][k]
            question = reply.get("question") or DETAIL_QUESTIONS[key % len(DETAIL_QUESTIONS)]
            turn = {"type": "summary" if kind == "detail" else "reasoning", "question": question,
                    "answer": reply["answer"]}  # fmt: skip
            reason = check_turn(
                turn,
                context_words(contexts[k], batch["scene"][k]),
                min_share=0.5,
                scene=batch["scene"][k],
                similarity=similarity,
            )
            if reason is not None:
                rejects.append({"id": row_id, "kind": kind, "reason": f"ungrounded: {reason}",
                                "raw": completion.text[:2000]})  # fmt: skip
                continue
            row = to_llava(f"{row_id}#{kind}", [(question, reply["answer"].strip())], source="llm", kind=kind)
            rows.append({**row, "image": row_id})
    return rows, rejects
