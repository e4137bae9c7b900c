"""End-to-end speed of `unicorn run` on a config (default: configs/default.yaml): rows/s and the share of wall
time spent in each stage. Target: the stages outside the LLM and the encoders take under 10% of the time.

    python bench/pipeline_speed.py [CONFIG] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unicorn.pipeline.config import load_config  # noqa: E402
from unicorn.pipeline.run import run_pipeline  # noqa: E402
from unicorn.pipeline.storage import manifest_totals  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("config", nargs="?")
    ap.add_argument("--out", help="run folder (default: a fresh temporary one, so nothing comes from the cache)")
    args = ap.parse_args()
    config = load_config(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or f"{tmp}/run"
        start = time.perf_counter()
        manifest = run_pipeline(config, out, restart=True, progress=False, log=lambda m: None)
        wall = time.perf_counter() - start
    stats, seconds, counters = manifest_totals(manifest)
    rows = stats["rows"]
    stages = seconds["total"]
    model = {"llm": counters["llm_seconds"], "encoders": counters["encoder_seconds"]}
    other = stages - sum(model.values())
    print(
        f"{rows} rows, {manifest['seed_file']['kept']} seeds, {manifest['totals']['shards']} shards; "
        f"wall {wall:.1f} s (steps {stages:.1f} s, the rest is model loading and start-up)"
    )
    print(f"end-to-end {rows / wall:.3f} rows/s; over the steps alone {rows / stages:.3f} rows/s")
    for name in ("captions", "dedup", "instruct", "embed", "write"):
        print(f"  step {name:<9} {seconds[name]:8.2f} s  {100 * seconds[name] / stages:5.1f}%")
    print(
        f"  inside the LLM {model['llm']:.2f} s ({100 * model['llm'] / stages:.1f}%), "
        f"the embed encoder {model['encoders']:.2f} s ({100 * model['encoders'] / stages:.1f}%)"
    )
    print(
        f"outside the LLM and the embed encoder: {100 * other / stages:.1f}% of step time (includes the "
        f"filter/dedup MiniLM)"
    )


if __name__ == "__main__":
    main()
