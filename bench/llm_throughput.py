"""Does the `openai:` backend keep a server busy? And does a resumed run re-use every cached response?

Starts a real llama.cpp server (bundled Gemma 3 270M) on 127.0.0.1, then on the same caption prompts:
1. a bare concurrent client (httpx, N requests in flight, no cache, no parsing),
2. the pipeline's caption stage (`diversify` through `OpenAILLM`, fresh cache),
and prints completion tokens/s of each and their ratio. Then it re-runs the stage with a cache that holds
only the first half of the responses (as a run killed half-way leaves it) and prints the cache hits.

    python bench/llm_throughput.py [--seeds 24] [--k 2] [--in-flight 4]

`--in-process` measures the embedded model instead (`llamacpp:default`, 2 cores), side by side on the caption
stage's own prompts: every request from an empty context (the per-request reset, the reference), the saved
prefix state restored per request (the backend's default), and the bare model through llama-cpp-python with its
own prompt reuse (what the hardware allows, history-dependent). Prints tokens/s, the ratios, and whether every
reply with the prefix state is the same alone, in order, in reverse order and in a second fresh model.

    python bench/llm_throughput.py --in-process [--seeds 12] [--k 2] [--config configs/default.yaml]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unicorn.captions.variants import diversify  # noqa: E402
from unicorn.llm import create_llm  # noqa: E402
from unicorn.llm.llamacpp import default_model_path  # noqa: E402
from unicorn.llm.server import llama_server  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "coco_captions_val2017" / "captions_val2017.json"


def seeds(n: int) -> dict[str, list]:
    from unicorn.seeds import read_seeds

    source = str(SHARED) if SHARED.is_file() else f"world:{n}"
    rows, _ = read_seeds(source, limit=n)
    return {"id": [r["id"] for r in rows], "text": [r["text"] for r in rows]}


def stage(batch, url: str, cache: Path, in_flight: int, k: int):
    llm = create_llm(f"openai:{url}#gemma", cache=cache, max_in_flight=in_flight)
    start = time.perf_counter()
    out = diversify(batch, llm, k=k)
    return out, llm.usage, time.perf_counter() - start


async def bare(url: str, bodies: list[dict], in_flight: int) -> tuple[int, float]:
    """The reference: the same requests, as fast as a plain concurrent client can send them."""
    import httpx

    gate = asyncio.Semaphore(in_flight)
    tokens = 0
    async with httpx.AsyncClient(timeout=300) as client:

        async def one(body):
            nonlocal tokens
            async with gate:
                r = await client.post(url + "/chat/completions", json=body)
                tokens += r.json()["usage"]["completion_tokens"]

        start = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
    return tokens, time.perf_counter() - start


def capture_bodies(batch, k: int, options: dict | None = None) -> list[dict]:
    """The exact request bodies the stage sends (same prompts, sampling and seeds), captured via a recorder."""
    from unicorn.llm.base import LLM, Completion

    bodies = []

    class Recorder(LLM):
        spec, model_id = "record", "record"

        def _generate(self, requests, params, done):
            for j, (m, p) in enumerate(zip(requests, params, strict=True)):
                body = {"model": "gemma", "messages": m, "temperature": p.temperature, "top_p": p.top_p}
                bodies.append({**body, "max_tokens": p.max_tokens, "seed": p.seed, "stop": list(p.stop)})
                done(j, Completion(""))

    diversify(batch, Recorder(), k=k, **(options or {}))
    return bodies


def from_config(path: str, n: int) -> tuple[dict, dict]:
    """The seeds and the diversify options of a run config's caption stage (prompt, personas, max tokens,
    temperature, seed): the main job's own requests."""
    from unicorn.pipeline.config import load_config
    from unicorn.prompts import load_lines, load_text
    from unicorn.seeds import read_seeds

    config = load_config(path)
    c = config.captions
    rows, _ = read_seeds(config.seeds.source, limit=n)
    options = {"template": load_text(c.prompt, fields=("seed", "persona")), "personas": load_lines(c.personas),
               "seed": config.seed, "max_tokens": c.max_tokens, "temperature": c.temperature}  # fmt: skip
    return {"id": [r["id"] for r in rows], "text": [r["text"] for r in rows]}, options


def in_process(batch, k: int, options: dict | None = None) -> None:
    from unicorn.llm import SamplingParams
    from unicorn.llm.base import render_prompt

    bodies = capture_bodies(batch, k, options)
    requests = [b["messages"] for b in bodies]
    params = [SamplingParams(temperature=b["temperature"], top_p=b["top_p"], max_tokens=b["max_tokens"], seed=b["seed"],
                             stop=tuple(b["stop"])) for b in bodies]  # fmt: skip
    results = {}
    for name, options in (("reset per request", {"prefix_cache": False}), ("prefix state", {})):
        llm = create_llm("llamacpp:default", **options)
        start = time.perf_counter()
        out = llm.generate(requests, params, progress=False)
        seconds = time.perf_counter() - start
        results[name] = (sum(c.completion_tokens for c in out) / seconds, [c.text for c in out], llm, seconds)
    llm = results["prefix state"][2]
    replies = results["prefix state"][1]
    alone = [llm.generate([r], [p], progress=False)[0].text for r, p in zip(requests[:6], params[:6], strict=True)]
    reverse = [c.text for c in llm.generate(requests[::-1], params[::-1], progress=False)][::-1]
    llm.cache = None
    second = create_llm("llamacpp:default")
    again = [c.text for c in second.generate(requests, params, progress=False)]
    model = second.model  # the bare model: llama-cpp-python's own prefix reuse, no reset, no state restore
    start, tokens = time.perf_counter(), 0
    for r, p in zip(requests, params, strict=True):
        o = model.create_completion(render_prompt(r), max_tokens=p.max_tokens, temperature=p.temperature,
                                    top_p=p.top_p, stop=list(p.stop), seed=p.seed)  # fmt: skip
        tokens += o["usage"]["completion_tokens"]
    bare_tps = tokens / (time.perf_counter() - start)
    reset_tps, prefix_tps = results["reset per request"][0], results["prefix state"][0]
    print(f"caption stage on llamacpp:default, {len(requests)} requests ({len(batch['id'])} seeds x {k}), 2 cores")
    print(f"  reset per request : {reset_tps:6.1f} tok/s")
    print(f"  prefix state      : {prefix_tps:6.1f} tok/s  = {prefix_tps / reset_tps:.2f}x reset (target >= 1.6)")
    print(
        f"  bare llama-cpp    : {bare_tps:6.1f} tok/s  (history-dependent reuse); prefix state = "
        f"{prefix_tps / bare_tps:.2f}x bare, reset = {reset_tps / bare_tps:.2f}x bare"
    )
    print(
        f"  prefix-state replies identical alone: {alone == replies[:6]}, in reverse order: {reverse == replies}, "
        f"in a second fresh model: {again == replies}"
    )
    # what any prefix reuse can win: the share of the reset run spent evaluating the shared prefix
    from unicorn.llm.base import split_prefix

    head = model.tokenize(split_prefix(requests[0])[0].encode(), add_bos=True)
    start = time.perf_counter()
    for _ in range(3):
        model.reset()
        model.eval(head)
    prefix_s = (time.perf_counter() - start) / 3
    reset_s = results["reset per request"][3]
    share = prefix_s * len(requests) / reset_s
    print(
        f"  the shared prefix ({len(head)} tokens) takes {prefix_s:.2f} s to evaluate: {share:.0%} of the reset run; "
        f"removing all of it bounds the gain at {1 / (1 - share):.2f}x (1.6x needs >= 37.5%)"
    )
    constrained(requests[0], batch)


def constrained(prefix_request, batch, n: int = 8) -> None:
    """The conversation writer's schema-constrained requests: the grammar checked per drawn token (the backend's
    default) against llama-cpp-python's grammar-first chain, same requests, same seeds."""
    from unicorn.instruct.writer import write_conversations

    rows = {"id": batch["id"][:n], "caption": batch["text"][:n]}
    for name, fast in (("grammar first (llama-cpp-python)", False), ("grammar checked per draw", True)):
        llm = create_llm("llamacpp:default", fast_grammar=fast)
        start = time.perf_counter()
        convs, rejects = write_conversations(rows, llm, min_turns=3, max_turns=3, repairs=0, max_tokens=260)
        seconds = time.perf_counter() - start
        tps = llm.usage.completion_tokens / seconds
        print(f"  conversations, {name:32s}: {tps:5.1f} tok/s, {seconds:5.1f} s, kept {len(convs)}/{n}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=24)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--in-process", action="store_true", help="the embedded model instead of a server")
    ap.add_argument(
        "--config",
        help="with --in-process: the seeds and caption-stage options of this run config "
        "(e.g. configs/default.yaml, the main job) instead of COCO captions and diversify's defaults",
    )
    args = ap.parse_args()
    batch, options = from_config(args.config, args.seeds) if args.config else (seeds(args.seeds), None)
    if args.in_process:
        return in_process(batch, args.k, options)
    bodies = capture_bodies(batch, args.k)
    with llama_server(default_model_path()) as url, tempfile.TemporaryDirectory() as tmp:
        asyncio.run(bare(url, bodies[:2], args.in_flight))  # warm the server once
        tokens, seconds = asyncio.run(bare(url, bodies, args.in_flight))
        bare_tps = tokens / seconds
        _, usage, stage_seconds = stage(batch, url, Path(tmp) / "full.sqlite", args.in_flight, args.k)
        stage_tps = usage.completion_tokens / stage_seconds
        print(f"requests: {len(bodies)} ({args.seeds} seeds x {args.k}), {args.in_flight} in flight")
        print(f"bare client : {tokens} tokens in {seconds:.1f} s = {bare_tps:.1f} tok/s")
        print(f"caption stage: {usage.completion_tokens} tokens in {stage_seconds:.1f} s = {stage_tps:.1f} tok/s")
        print(f"ratio stage/bare: {stage_tps / bare_tps:.3f}  (target >= 0.9)")

        half = Path(tmp) / "half.sqlite"  # what a run killed half-way leaves behind
        with sqlite3.connect(Path(tmp) / "full.sqlite") as src, sqlite3.connect(half) as dst:
            dst.execute("CREATE TABLE responses (key TEXT PRIMARY KEY, response TEXT NOT NULL)")
            rows = src.execute("SELECT key, response FROM responses ORDER BY rowid").fetchall()
            dst.executemany("INSERT INTO responses VALUES (?, ?)", rows[: len(rows) // 2])
        first, _, _ = stage(batch, url, Path(tmp) / "full.sqlite", args.in_flight, args.k)
        resumed, usage, _ = stage(batch, url, half, args.in_flight, args.k)
        print(
            f"resumed run: {usage.cache_hits} of {usage.requests} requests from the cache; "
            f"rows identical to the full run: {resumed['caption'] == first['caption']}"
        )


if __name__ == "__main__":
    main()
