"""`unicorn captions` (stage 1) and `unicorn instruct` (stage 2)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from modality_transfer.io import write_json, write_jsonl

from .errors import InputError


def add_commands(commands) -> None:
    cap = commands.add_parser("captions", help="diversify caption seeds with an LLM, filter and dedup")
    cap.add_argument(
        "--seeds", required=True, help="file (.txt .jsonl .json .tsv), hf:NAME, world:N[@SEED], domain:LABELS"
    )
    cap.add_argument("--out", required=True, help="output folder")
    cap.add_argument("--llm", default="llamacpp:default", help="llamacpp:PATH|default, openai:URL#MODEL, vllm:M, hf:M")
    cap.add_argument("--k", type=int, default=3, help="variants per seed")
    cap.add_argument("--limit", type=int, help="use only the first N seeds")
    cap.add_argument("--seed", type=int, default=0)
    cap.add_argument("--batch-size", type=int, default=32)
    cap.add_argument("--max-tokens", type=int, default=96)
    cap.add_argument("--encoder", default="st:default", help="sentence encoder for faithfulness and dedup")
    cap.add_argument("--min-faithfulness", type=float, default=0.5)
    cap.add_argument("--dedup-threshold", type=float, default=0.95)
    cap.add_argument("--judge", action="store_true", help="also ask the LLM whether each caption could be a photo")
    cap.add_argument("--prompt", default="caption", help="prompt name or file with {seed} and {persona}")
    cap.add_argument("--personas", default="personas", help="persona list name or file")
    cap.add_argument("--cache", help="request cache (default: OUT/cache.sqlite)")
    cap.set_defaults(run=_captions)

    ins = commands.add_parser("instruct", help="multi-turn instruction data: LLM-written and programmatic")
    ins.add_argument("--captions", help="JSONL of {id, caption} rows (e.g. captions.jsonl) for LLM-written data")
    ins.add_argument("--scenes", help="JSONL of rows with a 'scene' or COCO 'instances' for programmatic data")
    ins.add_argument("--out", required=True)
    ins.add_argument("--llm", default="llamacpp:default")
    ins.add_argument("--limit", type=int)
    ins.add_argument("--seed", type=int, default=0)
    ins.add_argument("--min-turns", type=int, default=3)
    ins.add_argument("--max-turns", type=int, default=8)
    ins.add_argument("--repairs", type=int, default=1, help="repair-and-retry rounds for invalid JSON")
    ins.add_argument("--turns", type=int, default=4, help="turns per programmatic conversation")
    ins.add_argument("--cache", help="request cache (default: OUT/cache.sqlite)")
    ins.set_defaults(run=_instruct)


def read_jsonl(path: str, what: str) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{what} file {path} not found")
    rows = []
    for n, line in enumerate(p.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"{path}:{n} is not a JSON line: {type(e).__name__}") from None
        if not isinstance(row, dict):
            raise InputError(f"{path}:{n} is not a JSON object")
        rows.append(row)
    if not rows:
        raise InputError(f"{what} file {path} is empty")
    return rows


def _out(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create output folder {out}: {e.strerror}") from None
    return out


def _captions(args) -> int:
    from .captions.filters import FilterConfig
    from .captions.prompts import load_lines, load_text
    from .captions.stage import CaptionConfig, format_stats, run_captions
    from .encoders import create_encoder
    from .llm import create_llm
    from .seeds import read_seeds

    config = CaptionConfig(
        k=args.k,
        seed=args.seed,
        batch_size=args.batch_size,
        max_tokens=args.max_tokens,
        dedup_threshold=args.dedup_threshold,
        prompt=args.prompt,
        personas=args.personas,
        filters=FilterConfig(min_faithfulness=args.min_faithfulness, judge=args.judge),
    )
    load_text(args.prompt, fields=("seed", "persona"))  # refuse bad prompt files before loading any model
    load_lines(args.personas)
    seeds, seed_stats = read_seeds(args.seeds, limit=args.limit)
    out = _out(args.out)
    llm = create_llm(args.llm, cache=args.cache or out / "cache.sqlite")
    encoder = create_encoder(args.encoder)
    kept, rejected, stats = run_captions(
        seeds, llm, encoder, config, judge=llm if args.judge else None, log=lambda m: print(m, file=sys.stderr)
    )
    stats["seed_file"] = {"source": args.seeds, **seed_stats}
    write_jsonl(out / "captions.jsonl", kept)
    write_jsonl(out / "rejected.jsonl", rejected)
    write_json(out / "stats.json", stats)
    (out / "report.md").write_text(caption_report(stats, kept, rejected))
    print(
        f"seeds read {seed_stats['read']}, kept {seed_stats['kept']}; skipped: "
        + ", ".join(f"{k} {v}" for k, v in seed_stats.items() if k not in ("read", "kept"))
    )
    print(format_stats(stats))
    print(f"wrote {out}/captions.jsonl ({len(kept)} rows), rejected.jsonl ({len(rejected)}), stats.json, report.md")
    return 0


def caption_report(stats: dict, kept: list[dict], rejected: list[dict], samples: int = 8) -> str:
    from .captions.stage import format_stats

    lines = ["# Caption run", "", "```", format_stats(stats), "```", "", "## Kept (sample)", ""]
    lines += [f"- **{r['seed']}** -> {r['caption']} *(faithfulness {r['faithfulness']})*" for r in kept[:samples]]
    lines += ["", "## Rejected (sample)", ""]
    lines += [f"- [{r['reject']}] **{r['seed']}** -> {r['caption'] or '(empty)'}" for r in rejected[:samples]]
    return "\n".join(lines) + "\n"


def _instruct(args) -> int:
    from .instruct.conversations import conversation_error
    from .instruct.from_programs import program_conversations
    from .instruct.writer import write_conversations
    from .llm import create_llm

    if not args.captions and not args.scenes:
        raise InputError("give --captions (LLM-written data), --scenes (programmatic data) or both")
    out = _out(args.out)
    rows, rejects, stats = [], [], {}
    if args.scenes:
        scenes = read_jsonl(args.scenes, "scenes")[: args.limit]
        made, failed = program_conversations(scenes, seed=args.seed, turns=args.turns)
        rows += made
        rejects += failed
        stats["programs"] = {"rows_in": len(scenes), "conversations": len(made), "rejected": len(failed)}
    if args.captions:
        captions = read_jsonl(args.captions, "captions")[: args.limit]
        batch = {"id": [], "caption": []}
        for n, r in enumerate(captions):
            text = r.get("caption", r.get("text"))
            if not isinstance(text, str) or not text.strip():
                rejects.append({"id": str(r.get("id", n)), "reason": "empty caption"})
                continue
            batch["id"].append(str(r.get("id", n)))
            batch["caption"].append(text)
        llm = create_llm(args.llm, cache=args.cache or out / "cache.sqlite")
        made, failed = write_conversations(
            batch, llm, seed=args.seed, min_turns=args.min_turns, max_turns=args.max_turns, repairs=args.repairs
        )
        rows += made
        rejects += failed
        stats["llm"] = {
            "rows_in": len(captions),
            "conversations": len(made),
            "rejected": len(failed) + len(captions) - len(batch["id"]),
            "cache_hits": llm.usage.cache_hits,
            "requests": llm.usage.requests,
        }
    bad = [(r["id"], conversation_error(r)) for r in rows if conversation_error(r)]
    if bad:
        raise InputError(f"internal: conversation {bad[0][0]} is invalid: {bad[0][1]}")
    write_jsonl(out / "instructions.jsonl", rows)
    write_jsonl(out / "rejects.jsonl", rejects)
    write_json(out / "stats.json", stats)
    print(json.dumps(stats))
    print(f"wrote {out}/instructions.jsonl ({len(rows)} rows), rejects.jsonl ({len(rejects)})")
    return 0
