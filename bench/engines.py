"""Engines side by side on one config (default: configs/default.yaml), each into a fresh folder so no reply comes
from a cache: rows/s for `local`, for `ray` with 1 and with 2 caption (LLM) actors, and the share of wall time
Ray adds. Goal: `ray` on one machine at least 0.8x `local`.

    python bench/engines.py [CONFIG] [--limit N] [--json OUT.json]

"Ray adds" = wall time not covered by step calls on the critical path: wall - sum over steps of (seconds inside
that step, summed over shards, divided by its actor count), i.e. what start-up, scheduling, serialisation and the
dedup barrier cost beyond perfectly parallel step work. It also prints the per-actor caption throughput, the figure
that projects to N machines.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unicorn.pipeline.config import ActorConfig, load_config  # noqa: E402
from unicorn.pipeline.run import run_pipeline  # noqa: E402
from unicorn.pipeline.storage import manifest_totals  # noqa: E402


def measure(config, engine: str, tmp: str, name: str) -> dict:
    start = time.perf_counter()
    manifest = run_pipeline(config, f"{tmp}/{name}", engine=engine, progress=False, log=lambda m: None)
    wall = time.perf_counter() - start
    stats, seconds, counters = manifest_totals(manifest)
    rows = stats["rows"]
    actors = {"captions": config.ray.captions.concurrency, "instruct": config.ray.instruct.concurrency,
              "embed": config.ray.embed.concurrency, "dedup": 1, "write": 1} if engine == "ray" else {}  # fmt: skip
    critical = sum(seconds[k] / actors.get(k, 1) for k in ("captions", "dedup", "instruct", "embed", "write"))
    llm_s = counters["llm_seconds"]
    return {
        "engine": name,
        "rows": rows,
        "wall_s": round(wall, 1),
        "rows_per_s": round(rows / wall, 4),
        "step_seconds": {k: round(seconds[k], 1) for k in ("captions", "dedup", "instruct", "embed", "write")},
        "overhead_share": round(max(wall - critical, 0) / wall, 3),
        "llm_tokens": int(counters["llm_completion_tokens"]),
        "llm_tok_s_per_actor": round(counters["llm_completion_tokens"] / llm_s, 1) if llm_s else 0.0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?")
    ap.add_argument("--limit", type=int, help="use only the first N seeds")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    config = load_config(args.config)
    if args.limit:
        config = dataclasses.replace(config, seeds=dataclasses.replace(config.seeds, limit=args.limit))
    import ray

    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    cpus = int(ray.cluster_resources()["CPU"])
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        results.append(measure(config, "local", tmp, "local"))
        for n in (1, 2):
            threads = max(1, cpus // n)  # the caption actors share the machine's cores
            captions = ActorConfig(concurrency=n, num_cpus=threads)
            cfg = dataclasses.replace(config, ray=dataclasses.replace(config.ray, captions=captions))
            results.append(measure(cfg, "ray", tmp, f"ray-{n}-llm-actor{'s' if n > 1 else ''}"))
    ray.shutdown()
    local = results[0]["rows_per_s"]
    print(f"{'engine':<18} {'rows':>5} {'wall s':>7} {'rows/s':>7} {'x local':>7} {'Ray adds':>8} {'tok/s/actor':>11}")
    for r in results:
        print(
            f"{r['engine']:<18} {r['rows']:>5} {r['wall_s']:>7} {r['rows_per_s']:>7.3f} "
            f"{r['rows_per_s'] / local:>7.2f} {100 * r['overhead_share']:>7.1f}% {r['llm_tok_s_per_actor']:>11}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"cpus": cpus, "results": results}, indent=1))


if __name__ == "__main__":
    main()
