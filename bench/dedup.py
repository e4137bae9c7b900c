"""Semantic dedup at scale: agreement with exact search, and time, side by side in one run.

    python bench/dedup.py [--synthetic 1200000] [--batch 1024] [--journal 100000]

1. The 25,014 real COCO val2017 captions (../shared/data, or UNICORN_SHARED_DATA), embedded with MiniLM, deduplicated
   at the pipeline's threshold (0.95) by the pipeline's `Deduplicator` (exact up to `nlist` kept rows, IVF beyond)
   and by the same decisions made with exact search (`nlist` larger than the data: a flat index throughout): the
   share of exact's duplicate decisions the default finds, and any it makes that exact does not (both are checked
   cosines, so none may be invented).
2. `--synthetic` random 384-d unit vectors with planted near-duplicates (1% of rows copy an earlier row with
   noise, cosine >= 0.96 to it), in batches of `--batch` as shards arrive: seconds, rows/s, bytes per kept row,
   the share of planted duplicates found, and seconds per row in the first and last tenth (growth).
3. Recording a shard: `--journal` journal appends (one fsync each) of a real-sized record, milliseconds per append
   over the first and last thousand.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("UNICORN_SHARED_DATA") or ROOT.parent / "shared" / "data")


def decide_all(dedup, texts, x, batch: int) -> list:
    out = []
    for start in range(0, len(x), batch):
        out += dedup.decide(texts[start : start + batch], x[start : start + batch])
    return out


def coco(batch: int) -> None:
    from unicorn.captions.dedup import Deduplicator
    from unicorn.encoders import create_encoder

    path = SHARED / "coco_captions_val2017" / "captions_val2017.json"
    if not path.is_file():
        print(f"COCO captions not found at {path}; skipped")
        return
    captions = [a["caption"] for a in json.loads(path.read_text())["annotations"]]
    x = create_encoder("st:default").encode_text(captions, batch_size=256, progress=False)
    texts = [f"{i}" for i in range(len(captions))]  # semantic decisions only: no exact-text duplicates
    start = time.perf_counter()
    approx = decide_all(Deduplicator(x.shape[1], 0.95), texts, x, batch)
    approx_s = time.perf_counter() - start
    start = time.perf_counter()
    exact = decide_all(Deduplicator(x.shape[1], 0.95, nlist=len(x) + 1), texts, x, batch)
    exact_s = time.perf_counter() - start
    e = {i for i, d in enumerate(exact) if d}
    a = {i for i, d in enumerate(approx) if d}
    print(
        f"COCO val2017, {len(x)} captions, threshold 0.95, batches of {batch}: exact flags {len(e)} "
        f"({exact_s:.1f} s), default IVF flags {len(a)} ({approx_s:.1f} s); agreement "
        f"{len(e & a) / max(len(e), 1):.4f} of exact's decisions; flagged by the IVF but not by exact: {len(a - e)}"
    )


def planted(n: int, share: float, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    at = np.sort(rng.choice(np.arange(n // 10, n), int(n * share), replace=False))
    # each copies an earlier row that is not itself a copy: two copies of one row are each other's duplicates
    # only by chance (their cosine is ~0.95), and the original is what a dedup must keep
    originals = np.setdiff1d(np.arange(n), at)
    src = originals[(rng.random(len(at)) * np.searchsorted(originals, at)).astype(np.int64)]
    noise = rng.standard_normal((len(at), dim), dtype=np.float32) * 0.012
    x[at] = x[src] + noise
    x[at] /= np.linalg.norm(x[at], axis=1, keepdims=True)
    return x, set(at.tolist())


def synthetic(n: int, batch: int) -> None:
    from unicorn.captions.dedup import Deduplicator

    x, dups = planted(n, 0.01, 384)
    dedup = Deduplicator(384, 0.95)
    texts = [f"{i}" for i in range(n)]
    decisions, times = [], []
    start = time.perf_counter()
    for s in range(0, n, batch):
        t = time.perf_counter()
        decisions += dedup.decide(texts[s : s + batch], x[s : s + batch])
        times.append((time.perf_counter() - t) / len(x[s : s + batch]))
    seconds = time.perf_counter() - start
    found = {i for i, d in enumerate(decisions) if d}
    tenth = max(1, len(times) // 10)
    first, last = np.mean(times[:tenth]), np.mean(times[-tenth:])
    kept = n - len(found)
    print(f"synthetic: {n} rows (384-d, {len(dups)} planted near-duplicates) in {seconds:.1f} s "
          f"({n / seconds:.0f} rows/s); planted found {len(dups & found) / len(dups):.4f}; other rows flagged "
          f"{len(found - dups)}; index "
          f"{dedup.nbytes / kept:.0f} bytes per kept row; s/row first tenth {first * 1e6:.1f} us, last tenth "
          f"{last * 1e6:.1f} us ({last / first:.2f}x)")  # fmt: skip


def journal(appends: int) -> None:
    from unicorn.pipeline.storage import RunFolder, RunState

    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        folder = RunFolder(tmp)
        manifest, state = folder.open({"bench": True}, "0" * 64, restart=False)
        entry = {"index": 0, "rows": 256, "instructions": 256, "files": {f"f{i}": "a" * 64 for i in range(5)},
                 "stats": {f"stat_{i}": i for i in range(40)}, "seconds": {"captions": 0.1}, "counters": {},
                 "rejects": [{"stage": "dedup", "reason": "semantic_duplicate", "caption": "x" * 120}] * 3}  # fmt: skip
        times = []
        for i in range(appends):
            t = time.perf_counter()
            folder.append_record({**entry, "index": i, "seeds_sha256": "b" * 64}, state)
            times.append(time.perf_counter() - t)
        folder.close()
        first, last = np.mean(times[:1000]), np.mean(times[-1000:])
        size = (Path(tmp) / "shards.jsonl").stat().st_size
        print(f"journal: {appends} appends ({size / appends:.0f} bytes each, fsynced): {first * 1e3:.3f} ms per append "
              f"over the first thousand, {last * 1e3:.3f} ms over the last ({last / first:.2f}x)")  # fmt: skip
        del manifest, RunState


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=1_200_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--journal", type=int, default=100_000)
    parser.add_argument("--skip-coco", action="store_true")
    args = parser.parse_args()
    if args.journal:
        journal(args.journal)
    if not args.skip_coco:
        coco(args.batch)
    if args.synthetic:
        synthetic(args.synthetic, args.batch)


if __name__ == "__main__":
    main()
