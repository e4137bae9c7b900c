"""Does the `openai:` backend keep a server busy? And does a resumed run re-use every cached response?

Starts a real llama.cpp server (bundled Gemma 3 270M) on 127.0.0.1, then on the same caption prompts:
1. a bare concurrent client (httpx, N requests in flight, no cache, no parsing),
2. the pipeline's caption stage (`diversify` through `OpenAILLM`, fresh cache),
and prints completion tokens/s of each and their ratio. Then it re-runs the stage with a cache that holds
only the first half of the responses (as a run killed half-way leaves it) and prints the cache hits.

    python bench/llm_throughput.py [--seeds 24] [--k 2] [--in-flight 4]
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

from unicorn.captions.diversify import diversify  # noqa: E402
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


def capture_bodies(batch, k: int) -> list[dict]:
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

    diversify(batch, Recorder(), k=k)
    return bodies


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=24)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--in-flight", type=int, default=4)
    args = ap.parse_args()
    batch = seeds(args.seeds)
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
