"""Growth of the LLM-free main job with the run's size: seconds per row, bookkeeping per shard, peak memory, files,
and the cost of a resume, at 1K, 10K and 100K world seeds (and 1M with --sizes), side by side in one run.

    python bench/scale.py [--sizes 1000,10000,100000] [--shard-size 256] [--ray 10000] [--out DIR]

The job: world seeds -> seed rows only (`captions.k: 0`) -> exact and semantic dedup -> programmatic QA
(`instruct.llm_share: 0`) -> world-CLIP text tower + the shipped projector. Each size runs as a child process
(`unicorn run`), so its peak RSS is its own. At the middle size the run is also SIGKILLed at half its shards and
resumed: "resume startup" is the time from launch until the resumed run asks for its first new shard (reading the
journal, checking a bounded sample of shards, verifying seed hashes, rebuilding the dedup state), against the same
figure for a fresh run (loading the models). The bare encoders (world-CLIP text tower in the job's float64, MiniLM
for dedup) are timed alone at their best batch size for the ratio the job reaches. `--ray N` also runs N seeds on
`--engine ray` (a local instance) and checks its rows against the local run's. `--seed-file LINES` streams a
LINES-line seed file (the shipped world seeds repeated under new ids, about 1 KB a line) through the run's seed
reader and sharder, whole and with `limit: 1000`, each in a child process, beside a 1,000-line file: peak RSS and
lines/s.
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

ROOT = Path(__file__).resolve().parents[1]


PRECISION = "float64"  # set from --precision


def config_for(folder: Path, seeds: int, shard_size: int) -> Path:
    path = folder / f"scale-{seeds}.yaml"
    path.write_text(
        f"seeds: {{source: 'world:{seeds}@0'}}\ncaptions: {{k: 0}}\ninstruct: {{llm_share: 0.0}}\n"
        f"embed: {{projector: {ROOT / 'checkpoints' / 'world-projector'}, batch_size: 256, precision: {PRECISION}}}\n"
        f"shard_size: {shard_size}\nray: {{embed: {{concurrency: 1, num_cpus: 1}}}}\n"
    )
    return path


STREAM = """
import resource, sys, time
from unicorn.seeds import iter_seeds
path, limit, size = sys.argv[1], (int(sys.argv[2]) or None), int(sys.argv[3])
start, rows, shards = time.perf_counter(), 0, 0
for shard in iter_seeds(path, limit=limit).shards(size):
    rows, shards = rows + len(shard[1]), shards + 1
print(rows, shards, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def seed_file_memory(work: Path, lines: int, shard_size: int) -> None:
    """Peak RSS and lines/s of the seed stream over a `lines`-line file against a 1,000-line one."""
    template = [json.loads(line) for line in (ROOT / "seeds" / "world.jsonl").read_text().splitlines()]
    print(f"\nseed file streaming ({shard_size} seeds per shard):")
    print(f"{'lines':>9} {'limit':>6} {'read':>9} {'shards':>7} {'seconds':>8} {'lines/s':>8} {'peak RSS MiB':>12}")
    for n in (1000, lines):
        path = work / f"seeds-{n}.jsonl"
        if not path.is_file():
            with open(path, "w") as f:
                for i in range(n):
                    f.write(json.dumps({**template[i % len(template)], "id": f"seed-{i:08d}"}) + "\n")
        for limit in (0, 1000):
            out = subprocess.run([sys.executable, "-c", STREAM, str(path), str(limit), str(shard_size)],
                                 capture_output=True, text=True, check=True, cwd=ROOT).stdout.split()  # fmt: skip
            rows, shards, seconds, rss = int(out[0]), int(out[1]), float(out[2]), float(out[3])
            print(f"{n:>9} {limit or '-':>6} {rows:>9} {shards:>7} {seconds:>8.1f} {rows / seconds:>8.0f} {rss:>12.0f}")


def run(config: Path, out: Path, *, engine: str = "local", kill_at: int | None = None) -> dict:
    """`unicorn run` in a child process; its wall seconds and peak RSS (MiB). With `kill_at`, SIGKILL it once its
    journal holds that many shard records."""
    cmd = [sys.executable, "-m", "unicorn.cli", "run", str(config), "--out", str(out), "--no-report",
           "--engine", engine]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    if kill_at is not None:
        journal = out / "shards.jsonl"
        while proc.poll() is None:
            if journal.is_file() and journal.read_bytes().count(b"\n") >= kill_at:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.05)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode()
    if kill_at is None and status != 0:
        raise SystemExit(f"run failed: {err[-2000:]}")
    return {"wall": time.perf_counter() - start, "rss_mib": usage.ru_maxrss / 1024}


def bare_encoders(rows: int = 2048) -> dict:
    """Rows/s of each encoder alone at its best batch size, and of the two in sequence (what the job runs per row)."""
    from unicorn.encoders import create_encoder
    from unicorn.seeds import read_seeds

    texts = [r["text"] for r in read_seeds(f"world:{rows}@9")[0]]
    best = {}
    for spec, precision in (("world", PRECISION), ("st:default", "float32")):
        encoder = create_encoder(spec).set_precision(precision)
        encoder.encode_text(texts[:64], progress=False)
        rates = {}
        for batch in (64, 256, 1024):
            start = time.perf_counter()
            encoder.encode_text(texts, batch_size=batch, progress=False)
            rates[batch] = rows / (time.perf_counter() - start)
        best[spec] = max(rates.values())
    best["both"] = 1 / sum(1 / v for v in best.values())
    return best


def read_stats(out: Path) -> dict:
    manifest = json.loads((out / "manifest.json").read_text())
    totals = manifest["totals"]
    files = sum(1 for p in out.rglob("*") if p.is_file())
    dedup_bytes = sum(p.stat().st_size for p in (out / "dedup_emb").glob("*.npy"))
    return {"manifest": manifest, "rows": totals["rows"], "shards": totals["shards"], "files": files,
            "seconds": totals["seconds"], "record_seconds": manifest["record_seconds"],
            "startup": manifest.get("startup_seconds"), "dedup_file_bytes": dedup_bytes}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--shard-size", type=int, default=256)
    parser.add_argument("--ray", type=int, default=0, help="also run this many seeds on --engine ray")
    parser.add_argument("--no-resume", action="store_true", help="skip the kill-at-half and resume")
    parser.add_argument("--out", default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--seed-file", type=int, default=0, help="stream a seed file of this many lines")
    parser.add_argument(
        "--precision",
        default="float64",
        choices=("float64", "float32"),
        help="embed.precision: float64 makes Ray and local byte-identical; float32 is faster",
    )
    args = parser.parse_args()
    global PRECISION
    PRECISION = args.precision
    sizes = [int(s) for s in args.sizes.split(",") if s]
    work = Path(args.out or tempfile.mkdtemp(prefix="unicorn-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"runs in {work}; shard_size {args.shard_size}; embed.precision {args.precision}; {os.cpu_count()} CPUs",
          flush=True)  # fmt: skip
    if args.seed_file:
        seed_file_memory(work, args.seed_file, args.shard_size)
        if not args.sizes:
            return
    bare = bare_encoders()
    print(f"bare encoders, best batch: world-CLIP text ({PRECISION}) {bare['world']:.1f} rows/s, MiniLM "
          f"{bare['st:default']:.1f} rows/s, both in sequence {bare['both']:.1f} rows/s", flush=True)  # fmt: skip

    results = {}
    for n in sizes:
        config = config_for(work, n, args.shard_size)
        out = work / f"run-{n}"
        measured = run(config, out)
        stats = read_stats(out)
        results[n] = {**measured, **stats}
        print(f"{n} seeds: {stats['rows']} rows in {measured['wall']:.1f} s, peak RSS {measured['rss_mib']:.0f} MiB",
              flush=True)  # fmt: skip

    # "x bare": the encoders alone on the same work (every seed row through the dedup MiniLM, every kept row through
    # the world-CLIP text tower, each at its best batch size) over the job's wall time; s/seed counts input rows
    header = (f"{'seeds':>8} {'rows':>8} {'rows/s':>7} {'x bare':>6} {'s/seed':>9} {'s/row':>9} {'dedup s/row':>11} "
              f"{'embed s/row':>11} {'instr s/row':>11} {'record ms/shard':>15} {'write ms/shard':>14} "
              f"{'RSS MiB':>8} {'files':>7} {'dedup B/row':>11}")  # fmt: skip
    print("\n" + header)
    for n, r in results.items():
        s, rows, shards = r["seconds"], r["rows"], r["shards"]
        bare_seconds = n / bare["st:default"] + rows / bare["world"]
        print(f"{n:>8} {rows:>8} {rows / r['wall']:>7.1f} {bare_seconds / r['wall']:>6.2f} {r['wall'] / n:>9.5f} "
              f"{r['wall'] / rows:>9.5f} {s.get('dedup', 0) / rows:>11.6f} {s.get('embed', 0) / rows:>11.6f} "
              f"{s.get('instruct', 0) / rows:>11.6f} {1000 * r['record_seconds'] / shards:>15.2f} "
              f"{1000 * s.get('write', 0) / shards:>14.2f} {r['rss_mib']:>8.0f} {r['files']:>7} "
              f"{r['dedup_file_bytes'] / rows:>11.0f}")  # fmt: skip
    small, large = results[sizes[0]], results[sizes[-1]]
    growth = (large["wall"] / large["rows"]) / (small["wall"] / small["rows"])
    record_growth = (large["record_seconds"] / large["shards"]) / (small["record_seconds"] / small["shards"])
    print(
        f"\nseconds per row at {sizes[-1]} / at {sizes[0]}: {growth:.3f} (goal <= 1.1); recording a shard: "
        f"{record_growth:.3f} (goal <= 1.1); peak RSS: {large['rss_mib'] / small['rss_mib']:.3f}"
    )

    # kill at half and resume, at the middle size
    if not args.no_resume:
        resume(work, sizes[len(sizes) // 2], args, results)

    if args.ray:
        config = config_for(work, args.ray, args.shard_size)
        local = work / f"run-{args.ray}"
        if not local.is_dir():
            run(config, local)
        ray_out = work / f"ray-{args.ray}"
        measured = run(config, ray_out, engine="ray")
        stats = read_stats(ray_out)
        identical = all(
            (ray_out / rel).read_bytes() == (local / rel).read_bytes()
            for rel in (p.relative_to(local) for d in ("metadata", "text_emb", "image_emb", "instructions")
                        for p in (local / d).iterdir())
        )  # fmt: skip
        step_seconds = sum(v for k, v in stats["seconds"].items() if k in ("captions", "dedup", "instruct", "embed"))
        print(
            f"\nray at {args.ray} seeds: {measured['wall']:.1f} s ({stats['rows'] / measured['wall']:.1f} rows/s), "
            f"local {read_stats(local)['rows'] / run_wall(results, args.ray, local):.1f} rows/s; peak RSS "
            f"(driver) {measured['rss_mib']:.0f} MiB; rows identical to local: {identical}; step seconds "
            f"{step_seconds:.1f} of {measured['wall']:.1f} s wall (Ray's share at most "
            f"{1 - step_seconds / measured['wall']:.1%})"
        )


def resume(work: Path, n: int, args, results: dict) -> None:
    """SIGKILL a run of `n` seeds at half its shards, resume it, and compare with the clean run."""
    config = config_for(work, n, args.shard_size)
    out = work / f"resume-{n}"
    half = max(1, results[n]["shards"] // 2)
    run(config, out, kill_at=half)
    resumed = run(config, out)
    stats = read_stats(out)
    same = all((out / f"{d}").is_dir() for d in ("metadata",)) and all(
        (out / "metadata" / p.name).read_bytes() == p.read_bytes() for p in (work / f"run-{n}" / "metadata").iterdir()
    )
    print(
        f"\nresume at {n} seeds after SIGKILL at {half} of {results[n]['shards']} shards: startup "
        f"{stats['startup']:.2f} s (fresh run: {results[n]['startup']:.2f} s), resumed run {resumed['wall']:.1f} s "
        f"(whole clean run {results[n]['wall']:.1f} s); metadata identical to the clean run: {same}"
    )


def run_wall(results: dict, n: int, local: Path) -> float:
    if n in results:
        return results[n]["wall"]
    return json.loads((local / "manifest.json").read_text())["wall_seconds"]


if __name__ == "__main__":
    main()
