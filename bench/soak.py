"""Soak: the default config scaled to 512 world seeds, peak memory at 64 and at 512 seeds, one kill-and-resume.

Runs `unicorn run` as a child process (so each figure is one process's own peak RSS, read from `wait4`), on the
default config with the LLM stages kept short (`--max-tokens`, a small LLM-conversation share), on `world:N@7`:

1. 64 seeds, clean: peak RSS.
2. 512 seeds: SIGKILLed once half of its shards are written, then resumed with the same command: the peak RSS of
   each of the two processes, the resumed run validated (checksums, alignment, norms), and its first 64 seeds'
   shards compared byte for byte with run 1's (same seeds, same order, same dedup state: they must match).

Prints the peak RSS per seed count and the ratio (flat is the goal: a run streams shard by shard), rows/s, and
the checks. Takes about 10 minutes on 2 cores.

    python bench/soak.py [--seeds 512] [--small 64] [--max-tokens 12] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def config_for(folder: Path, seeds: int, max_tokens: int) -> Path:
    data = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text())
    data["seeds"] = {"source": f"world:{seeds}@7", "limit": None}
    data["captions"].update(k=1, max_tokens=max_tokens)
    data["instruct"].update(llm_share=0.02, max_tokens=4 * max_tokens, repairs=0)
    data["embed"]["projector"] = str(ROOT / "checkpoints" / "world-projector")
    path = folder / f"soak-{seeds}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def shards_done(out: Path) -> int:
    try:
        return (out / "shards.jsonl").read_bytes().count(b"\n")
    except (OSError, ValueError):
        return 0


def run(config: Path, out: Path, *, kill_at: int | None = None) -> dict:
    """One `unicorn run` child: its exit status, wall seconds and peak RSS (MiB); SIGKILLed at `kill_at` shards."""
    cmd = [sys.executable, "-m", "unicorn.cli", "run", str(config), "--out", str(out), "--no-report"]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    killed = False
    if kill_at is not None:
        while shards_done(out) < kill_at and proc.poll() is None:
            time.sleep(0.2)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = round(time.perf_counter() - start, 1)
    return {"killed": killed, "status": os.waitstatus_to_exitcode(status), "seconds": seconds,
            "peak_rss_mib": round(usage.ru_maxrss / 1024, 1), "shards": shards_done(out)}  # fmt: skip


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=512)
    parser.add_argument("--small", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=12)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from tests.test_pipeline import read_run
    from unicorn.pipeline.validate import validate_run

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = run(config_for(tmp, args.small, args.max_tokens), tmp / "small")
        big_config = config_for(tmp, args.seeds, args.max_tokens)
        total = -(-args.seeds // 8)
        first = run(big_config, tmp / "big", kill_at=total // 2)
        resumed = run(big_config, tmp / "big")
        check = validate_run(tmp / "big")
        small_rows, big_rows = read_run(tmp / "small"), read_run(tmp / "big")
        prefix_same = all(big_rows.get(name) == rows for name, rows in small_rows.items())
        manifest = json.loads((tmp / "big" / "manifest.json").read_text())
    rows = manifest["totals"]["rows"]
    result = {
        "small": {"seeds": args.small, **small},
        "big_killed": {"seeds": args.seeds, **first},
        "big_resumed": {"seeds": args.seeds, **resumed},
        "rows": rows,
        "rows_per_second": round(rows / (first["seconds"] + resumed["seconds"]), 3),
        "peak_ratio_big_over_small": round(
            max(first["peak_rss_mib"], resumed["peak_rss_mib"]) / small["peak_rss_mib"], 3
        ),
        "validate_problems": check["problems"][:3],
        "first_shards_equal_small_run": prefix_same,
    }  # fmt: skip
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for name in ("small", "big_killed", "big_resumed"):
            r = result[name]
            print(f"{name:12} {r['seeds']:4} seeds  exit {r['status']:4}  {r['seconds']:7.1f} s  "
                  f"peak RSS {r['peak_rss_mib']:7.1f} MiB  shards {r['shards']}")  # fmt: skip
        print(
            f"peak RSS {args.seeds} / {args.small} seeds: {result['peak_ratio_big_over_small']}x; {rows} rows, "
            f"{result['rows_per_second']} rows/s; validate problems: {len(check['problems'])}; "
            f"first {args.small} seeds' shards equal the {args.small}-seed run: {prefix_same}"
        )
    return result


if __name__ == "__main__":
    main()
