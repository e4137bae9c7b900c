"""What the LLM-written instructions reach: acceptance on real COCO captions, and LLaVA's three kinds against GPT-4's.

1. `--coco N` real COCO val2017 captions (../shared/data/coco_captions_val2017): one conversation each, written by
   the LLM under the conversation schema (enforced while decoding), then the grounding check; once per question
   mode (`--questions`: slots, the default, and free, the model's own questions), same captions and seeds. Prints
   the share that passes the schema, the share kept after grounding, turns dropped, the reject reasons, tokens/s.
2. `--images N` of the 30 COCO 2014 images for which LLaVA ships GPT-4's instructions
   (../shared/data/llava_coco_samples): the same captions + boxes fed to the writer for `conv`, `detail` and `complex`.
   Per kind: written, kept after grounding, answer length in words (ours, GPT-4's), the grounding rate of ours and of
   GPT-4's own answers under the same check (what the check makes of a strong writer), and the cosine under
   all-MiniLM-L6-v2 between our answer and GPT-4's for the same image and kind, beside the same cosine for GPT-4's
   answer to a different image of the same kind (the chance level of the measure). The conversation's question-type
   mix is printed too.

    python bench/instructions.py [--llm llamacpp:default] [--coco 50] [--questions slots,free] [--images 30]
                                 [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
COCO = SHARED / "coco_captions_val2017" / "captions_val2017.json"
LLAVA = SHARED / "llava_coco_samples"


def coco_acceptance(llm, n: int, questions: str = "slots") -> dict:
    from unicorn.instruct.writer import write_conversations
    from unicorn.seeds import read_seeds

    rows, _ = read_seeds(str(COCO), limit=n)
    start, tokens = time.perf_counter(), llm.usage.completion_tokens
    convs, rejects = write_conversations(
        {"id": [r["id"] for r in rows], "caption": [r["text"] for r in rows]}, llm, min_turns=3, max_turns=3,
        repairs=0, max_tokens=260, questions=questions,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    schema_fail = [r for r in rejects if not r["reason"].startswith("ungrounded")]
    dropped = sum(len(c.get("dropped", [])) for c in convs)
    return {
        "captions": len(rows),
        "schema_pass": round(1 - len(schema_fail) / len(rows), 3),
        "kept_after_grounding": round(len(convs) / len(rows), 3),
        "turns_dropped_from_kept": dropped,
        "reject_reasons": Counter(r["reason"].split(";")[0].split(":")[0] for r in rejects).most_common(),
        "tok_s": round((llm.usage.completion_tokens - tokens) / seconds, 2),
        "seconds": round(seconds, 1),
        "sample": convs[0]["conversations"] if convs else None,
        "sample_caption": rows[[r["id"] for r in rows].index(convs[0]["id"])]["text"] if convs else None,
    }


def load_llava(n: int):
    refs = [json.loads(line) for line in (LLAVA / "coco2014_val_gpt4_qa_30x3.jsonl").read_text().splitlines()]
    ids = list(dict.fromkeys(r["id"] for r in refs))[:n]
    context = {}
    for line in (LLAVA / "caps_boxes_coco2014_val_80.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["id"] in ids:
            context[row["id"]] = row
    return ids, {(r["id"], r["type"]): r for r in refs if r["id"] in ids}, context


def llava_kinds(llm, n: int, encoder) -> dict:
    from unicorn.instruct.grounding import check_turn, context_words
    from unicorn.instruct.llava_kinds import answer_cosines, captions_text, context_text, write_kinds
    from unicorn.seeds import boxes_context

    ids, refs, raw = load_llava(n)
    scenes = [boxes_context(raw[i], i) for i in ids]
    start, tokens = time.perf_counter(), llm.usage.completion_tokens
    rows, rejects = write_kinds({"id": ids, "caption": [s["captions"][0] for s in scenes], "scene": scenes}, llm,
                                encoder=encoder)  # fmt: skip
    seconds = time.perf_counter() - start
    ref_kind = {"conv": "conv", "detail": "detail", "complex": "complex"}
    out = {"images": len(ids), "tok_s": round((llm.usage.completion_tokens - tokens) / seconds, 2),
           "seconds": round(seconds, 1), "kinds": {}}  # fmt: skip
    for kind in ("conv", "detail", "complex"):
        mine = {r["image"]: r for r in rows if r["kind"] == kind}
        answers = {i: " ".join(t["value"] for t in r["conversations"][1::2]) for i, r in mine.items()}
        gpt4 = {i: refs[(i, ref_kind[kind])]["output"] for i in ids if (i, ref_kind[kind]) in refs}
        ctx = {i: context_words(context_text(s, s["captions"][0]), s) for i, s in zip(ids, scenes, strict=True)}
        turn_type = {"conv": "reasoning", "detail": "summary", "complex": "reasoning"}[kind]
        by_id = dict(zip(ids, scenes, strict=True))
        gpt4_ids = list(gpt4)
        # each GPT-4 answer against its own image's context, and (the control: a good check rejects nearly all)
        # against the next image's
        pairs = [(i, i) for i in gpt4_ids] + [(i, gpt4_ids[(j + 1) % len(gpt4_ids)]) for j, i in enumerate(gpt4_ids)]
        similar = [None] * len(pairs)
        if kind != "conv":  # long answers: their cosine to the captions, as write_kinds with an encoder
            similar = answer_cosines(encoder, [gpt4[i] for i, _ in pairs],
                                     [captions_text(by_id[c], by_id[c]["captions"][0]) for _, c in pairs])  # fmt: skip
        passes = [
            check_turn({"type": turn_type, "question": refs[(i, kind)]["instruction"], "answer": gpt4[i]}, ctx[c],
                       min_share=0.5, scene=by_id[c], similarity=sim) is None
            for (i, c), sim in zip(pairs, similar, strict=True)
        ]  # fmt: skip
        gpt4_grounded, gpt4_other = passes[: len(gpt4_ids)], passes[len(gpt4_ids) :]
        both = [i for i in ids if i in answers and i in gpt4]
        cos = chance = float("nan")
        if both:
            a = encoder.encode_text([answers[i] for i in both])
            b = encoder.encode_text([gpt4[i] for i in both])
            cos = float((a * b).sum(1).mean())
            if len(both) > 1:
                chance = float((b * np.roll(b, 1, axis=0)).sum(1).mean())  # GPT-4 vs GPT-4 on another image
        out["kinds"][kind] = {
            "written": len(ids),
            "kept": len(mine),
            "rejects": Counter(r["reason"].split(":")[0] for r in rejects if r["kind"] == kind).most_common(3),
            "words_ours": round(float(np.mean([len(a.split()) for a in answers.values()])), 1) if answers else 0,
            "words_gpt4": round(float(np.mean([len(a.split()) for a in gpt4.values()])), 1),
            "grounded_gpt4_same_check": round(float(np.mean(gpt4_grounded)), 3),
            "grounded_gpt4_other_image": round(float(np.mean(gpt4_other)), 3),
            "cos_to_gpt4": round(cos, 3),
            "cos_gpt4_other_image": round(chance, 3),
        }
        if kind == "conv":
            out["kinds"][kind]["question_types"] = Counter(t for r in mine.values() for t in r["types"]).most_common()
        if mine:
            first = next(iter(mine.values()))
            out["kinds"][kind]["sample"] = {"image": first["image"], "turns": first["conversations"][:4],
                                            "gpt4": gpt4.get(first["image"], "")[:300]}  # fmt: skip
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--llm", default="llamacpp:default")
    parser.add_argument("--coco", type=int, default=50, help="COCO captions for the acceptance check (0: skip)")
    parser.add_argument("--images", type=int, default=30, help="LLaVA images for the GPT-4 comparison (0: skip)")
    parser.add_argument(
        "--questions",
        default="slots,free",
        help="the writer's question modes to measure on COCO, side by side (slots, free)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not COCO.is_file() or not LLAVA.is_dir():
        parser.error(f"needs the shared data in {SHARED} (see its README)")
    from unicorn.encoders import create_encoder
    from unicorn.llm import create_llm

    llm = create_llm(args.llm)
    result = {"llm": args.llm}
    if args.coco:
        for mode in args.questions.split(","):
            result["coco" if mode == "slots" else f"coco_{mode}"] = coco_acceptance(llm, args.coco, mode)
    if args.images:
        result["llava"] = llava_kinds(llm, args.images, create_encoder("st:default"))
    llm.close()
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else _table(result))
    return result


def _table(r: dict) -> str:
    lines = [f"LLM: {r['llm']}"]
    for name in [k for k in r if k.startswith("coco")]:
        c = r[name]
        mode = "slots" if name == "coco" else name.split("_", 1)[1]
        lines += [f"COCO captions ({mode} questions): {c['captions']}, schema pass {c['schema_pass']:.1%}, "
                  f"kept after grounding {c['kept_after_grounding']:.1%}, "
                  f"turns dropped from kept {c['turns_dropped_from_kept']}, {c['tok_s']} tok/s, {c['seconds']} s",
                  f"  rejects: {c['reject_reasons']}"]  # fmt: skip
        lines.append(f"  first kept conversation, verbatim (caption: {c['sample_caption']!r}):")
        for turn in c["sample"] or []:
            lines.append(f"    {turn['from']}: {turn['value']!r}")
    if "llava" in r:
        lines.append(f"LLaVA images: {r['llava']['images']} ({r['llava']['tok_s']} tok/s, {r['llava']['seconds']} s)")
        lines.append("  kind     kept/written  words ours/GPT-4  GPT-4 grounded (other image)  cos to GPT-4 (chance)")
        for kind, k in r["llava"]["kinds"].items():
            lines.append(
                f"  {kind:8} {k['kept']:>4}/{k['written']:<8} {k['words_ours']:>6}/{k['words_gpt4']:<9} "
                f"{k['grounded_gpt4_same_check']:>14.1%} ({k['grounded_gpt4_other_image']:5.1%})        "
                f"{k['cos_to_gpt4']:.3f} ({k['cos_gpt4_other_image']:.3f})"
            )
            if k.get("rejects"):
                lines.append(f"           rejects: {k['rejects']}")
        conv = r["llava"]["kinds"].get("conv", {})
        lines.append(f"  question types among kept conv: {conv.get('question_types')}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
