"""`unicorn captions` (stage 1) and `unicorn instruct` (stage 2)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from modality_transfer.io import read_jsonl, write_json, write_jsonl

from ..errors import InputError
from ..instruct.slots import QUESTIONS  # light: the writer itself pulls in jsonschema


def add_commands(commands) -> None:
    cap = commands.add_parser(
        "captions", help="diversify caption seeds with an LLM, filter and dedup (the run's captions + dedup steps)"
    )
    cap.add_argument(
        "--seeds", required=True, help="file (.txt .jsonl .json .tsv), hf:NAME, world:N[@SEED], domain:LABELS"
    )
    cap.add_argument("--out", required=True, help="output folder")
    cap.add_argument("--config", help="run config YAML whose captions/dedup sections, seed and shard_size to use")
    cap.add_argument("--llm", help="llamacpp:PATH|default, openai:URL#MODEL, vllm:M, hf:M")
    cap.add_argument("--k", type=int, help="variants per seed")
    cap.add_argument("--limit", type=int, help="use only the first N seeds")
    cap.add_argument("--seed", type=int)
    cap.add_argument("--shard-size", type=int, help="seeds per batch (as in unicorn run)")
    cap.add_argument("--max-tokens", type=int)
    cap.add_argument("--encoder", help="sentence encoder for faithfulness and dedup")
    cap.add_argument("--min-faithfulness", type=float)
    cap.add_argument("--dedup-threshold", type=float)
    cap.add_argument("--judge", action=argparse.BooleanOptionalAction, help="ask the LLM if each caption is a photo")
    cap.add_argument("--include-seeds", action=argparse.BooleanOptionalAction, help="keep each seed as a row too")
    cap.add_argument("--prompt", help="prompt name or file with {seed} and {persona}")
    cap.add_argument("--personas", help="persona list name or file")
    cap.set_defaults(run=_captions)

    ins = commands.add_parser("instruct", help="multi-turn instruction data: LLM-written and programmatic")
    ins.add_argument("--captions", help="JSONL of {id, caption[, scene]} rows (e.g. captions.jsonl): LLM-written")
    ins.add_argument("--scenes", help="JSONL of rows with a 'scene' or COCO 'instances': programmatic")
    ins.add_argument("--out", required=True)
    ins.add_argument("--config", help="run config YAML whose instruct section, seed and shard_size to use")
    ins.add_argument("--llm")
    ins.add_argument("--limit", type=int)
    ins.add_argument("--seed", type=int)
    ins.add_argument("--min-turns", type=int)
    ins.add_argument("--max-turns", type=int)
    ins.add_argument("--repairs", type=int, help="repair-and-retry rounds for invalid JSON")
    ins.add_argument("--turns", type=int, help="turns per programmatic conversation")
    ins.add_argument(
        "--questions",
        choices=QUESTIONS,
        help="slots: questions drawn from what the caption states (small models); free: the model's own",
    )
    ins.set_defaults(run=_instruct)


def _out(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create output folder {out}: {e.strerror}") from None
    return out


def _config(args, section: str, flags: dict, *, shared: tuple[str, ...] = ()):
    """The run config (from --config, else the defaults) with the flags given on the command line applied."""
    from ..pipeline.config import RunConfig, load_config

    config = load_config(args.config) if args.config else RunConfig()
    changes = {k: v for k, v in flags.items() if v is not None}
    top = {k: getattr(args, k) for k in ("seed", "shard_size") if getattr(args, k, None) is not None}
    try:
        config = dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **changes)})
        if "dedup" in shared:
            values = {"threshold": args.dedup_threshold, "encoder": args.encoder}
            values = {k: v for k, v in values.items() if v is not None}
            config = dataclasses.replace(config, dedup=dataclasses.replace(config.dedup, **values))
        return dataclasses.replace(config, **top)
    except TypeError as e:
        raise InputError(str(e)) from None


def _captions(args) -> int:
    from ..captions.summary import caption_stats, format_stats
    from ..engines.in_memory import run_some_steps
    from ..prompts import load_lines, load_text
    from ..seeds import describe_seed_stats, read_seeds
    from ..steps import columns_to_rows, seed_columns

    flags = {
        "llm": args.llm, "k": args.k, "max_tokens": args.max_tokens, "filter_encoder": args.encoder,
        "min_faithfulness": args.min_faithfulness, "judge": args.judge, "include_seeds": args.include_seeds,
        "prompt": args.prompt, "personas": args.personas,
    }  # fmt: skip
    config = _config(args, "captions", flags, shared=("dedup",))
    load_text(config.captions.prompt, fields=("seed", "persona"))  # refuse bad prompt files before loading a model
    load_lines(config.captions.personas)
    seeds, seed_stats = read_seeds(args.seeds, limit=args.limit)
    out = _out(args.out)
    batches = [seed_columns(seeds[i : i + config.shard_size]) for i in range(0, len(seeds), config.shard_size)]
    batch, counters = run_some_steps(
        batches, config, ("captions", "dedup"), run_dir=out, log=lambda m: print(m, file=sys.stderr)
    )
    stats = caption_stats([s["text"] for s in seeds], batch, counters)
    stats["seed_file"] = {"source": args.seeds, **seed_stats}
    stats["config"] = {"captions": dataclasses.asdict(config.captions), "dedup": dataclasses.asdict(config.dedup),
                       "seed": config.seed, "shard_size": config.shard_size}  # fmt: skip
    rows = columns_to_rows(batch)
    kept = [r for r in rows if r["reject"] is None]
    rejected = [r for r in rows if r["reject"] is not None]
    write_jsonl(out / "captions.jsonl", kept)
    write_jsonl(out / "rejected.jsonl", rejected)
    write_json(out / "stats.json", stats)
    (out / "report.md").write_text(caption_report(stats, kept, rejected))
    print(f"seeds: {describe_seed_stats(seed_stats)}")
    print(format_stats(stats))
    print(f"wrote {out}/captions.jsonl ({len(kept)} rows), rejected.jsonl ({len(rejected)}), stats.json, report.md")
    return 0


def caption_report(stats: dict, kept: list[dict], rejected: list[dict], samples: int = 8) -> str:
    from ..captions.summary import format_stats

    lines = ["# Caption run", "", "```", format_stats(stats), "```", "", "## Kept (sample)", ""]
    lines += [f"- **{r['seed']}** -> {r['caption']} *(faithfulness {r['faithfulness']})*" for r in kept[:samples]]
    lines += ["", "## Rejected (sample)", ""]
    lines += [f"- [{r['reject']}] **{r['seed']}** -> {r['caption'] or '(empty)'}" for r in rejected[:samples]]
    return "\n".join(lines) + "\n"


def _instruct(args) -> int:
    import json

    from ..engines.in_memory import run_some_steps
    from ..instruct.conversations import conversation_error

    if not args.captions and not args.scenes:
        raise InputError("give --captions (LLM-written data), --scenes (programmatic data) or both")
    flags = {"llm": args.llm, "min_turns": args.min_turns, "max_turns": args.max_turns, "repairs": args.repairs,
             "turns": args.turns, "questions": args.questions}  # fmt: skip
    base = _config(args, "instruct", flags)
    out = _out(args.out)
    rows, rejects, stats = [], [], {}
    # --scenes rows get the programs only; --captions rows an LLM-written conversation each (and programs where
    # they carry a scene). Both through the run's own instruct step.
    for path, what, share in ((args.scenes, "scenes", 0.0), (args.captions, "captions", 1.0)):
        if not path:
            continue
        programs = share == 0 or base.instruct.programs
        config = dataclasses.replace(
            base, instruct=dataclasses.replace(base.instruct, llm_share=share, programs=programs)
        )
        from ..instruct.from_programs import row_context

        found = read_jsonl(path, what)[: args.limit]
        batch = {"id": [], "caption": [], "scene": [], "reject": []}
        for n, r in enumerate(found):
            text = r.get("caption", r.get("text"))
            scene = row_context(r)  # a world `scene`, COCO-style `instances`, or none
            batch["id"].append(str(r.get("id", n)))
            batch["caption"].append(text if isinstance(text, str) else "")
            batch["scene"].append(scene.encode())
            empty = share and (not isinstance(text, str) or not text.strip())
            batch["reject"].append("empty caption" if empty else None)
        shard = config.shard_size
        batches = [{k: v[i : i + shard] for k, v in batch.items()} for i in range(0, len(found), shard)]
        done, counters = run_some_steps(batches, config, ("instruct",), run_dir=out)
        made = [c for s in done["conversations"] for c in json.loads(s)]
        failed = [f for s in done["conversation_rejects"] for f in json.loads(s)]
        failed += [{"id": i, "reason": r} for i, r in zip(done["id"], done["reject"], strict=True) if r]
        rows += made
        rejects += failed
        stats["programs" if share == 0 else "llm"] = {
            "rows_in": len(found),
            "conversations": len(made),
            "rejected": len(failed),
            "cache_hits": int(counters.get("llm_cache_hits", 0)),
            "requests": int(counters.get("llm_requests", 0)),
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
