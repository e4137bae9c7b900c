"""End-to-end speed of `unicorn run` on a config (default: configs/default.yaml): rows/s and the share of wall
time spent in each stage. Target: the stages outside the LLM and the encoders take under 10% of the time.

    python bench/pipeline_speed.py [CONFIG] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unicorn.pipeline.config import load_config  # noqa: E402
from unicorn.pipeline.run import run_pipeline  # noqa: E402


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
    seconds, rows = Counter(), 0
    for shard in manifest["shards"]:
        seconds.update(shard["seconds"])
        rows += shard["rows"]
    setup = manifest["setup_seconds"]
    stages = seconds["total"]
    other = stages - seconds["llm"] - seconds["encoder"]
    print(
        f"{rows} rows, {manifest['seed_file']['kept']} seeds, {len(manifest['shards'])} shards; "
        f"wall {wall:.1f} s (model loading {setup:.1f} s, stages {stages:.1f} s)"
    )
    print(f"end-to-end {rows / wall:.3f} rows/s; over the stages alone {rows / stages:.3f} rows/s")
    for name in ("llm", "encoder", "projector", "write"):
        print(f"  {name:<10} {seconds[name]:8.2f} s  {100 * seconds[name] / stages:5.1f}%")
    print(
        f"  {'rest':<10} {seconds['total'] - sum(seconds[k] for k in ('llm', 'encoder', 'projector', 'write')):8.2f} s"
    )
    print(f"outside the LLM and the encoders: {100 * other / stages:.1f}% of stage time (target < 10%)")


if __name__ == "__main__":
    main()
