"""`run_pipeline`: seeds -> shards -> the steps (captions, dedup, instruct, embed) on an engine -> shard files.

Seeds are cut into shards of `shard_size`; a shard is the batch every step sees, on every engine, and the unit
that is written whole and recorded in the manifest. A killed run (SIGKILL included) resumes at the shards the
manifest lacks; the dedup state is rebuilt from the finished shards, in order, so a resumed run writes exactly
the rows of a clean run, and every LLM reply already paid for comes from the request cache.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import InputError, ServiceUnavailable
from ..seeds import read_seeds
from .config import RunConfig
from .storage import RunFolder, manifest_totals

ENGINES = ("local", "ray")


def plan_shards(seeds: list[dict], shard_size: int) -> list[list[dict]]:
    return [seeds[i : i + shard_size] for i in range(0, len(seeds), shard_size)]


class Recorder:
    """The driver's side of a run: records finished shards in the manifest (the only writer of it)."""

    def __init__(self, folder: RunFolder, manifest: dict, total_seeds: int, progress: bool) -> None:
        self.folder, self.manifest = folder, manifest
        self.bar = tqdm(total=total_seeds, desc="run", unit="seed", disable=not progress)
        self.rows_before = sum(s["rows"] for s in manifest["shards"])

    def __call__(self, entry: dict, seeds: int) -> None:
        self.manifest["shards"].append(entry)
        self.manifest["shards"].sort(key=lambda s: s["index"])
        self.folder.write_manifest(self.manifest)  # the shard counts as done from here on
        self.bar.update(seeds)
        self.bar.set_postfix(rows=sum(s["rows"] for s in self.manifest["shards"]))


def run_pipeline(
    config: RunConfig,
    out: str | Path,
    *,
    engine: str = "local",
    address: str | None = None,
    restart: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict:
    """Run (or resume) `config` into `out` on `engine` (`local` or `ray`); returns the finished run's manifest.

    `address` (ray only) joins an existing Ray cluster; without it a local Ray instance starts (or the one this
    process already started is used)."""
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; engines are {', '.join(ENGINES)}")
    if address and engine != "ray":
        raise InputError("--address is for --engine ray")
    started = time.perf_counter()
    folder = RunFolder(out)
    seeds, seed_stats = read_seeds(config.seeds.source, limit=config.seeds.limit)
    if engine == "ray":
        from ..engines.ray_data import RayEngine

        runner = RayEngine(config, address=address)  # checks the cluster before touching out
    else:
        from ..engines.local import LocalEngine

        runner = LocalEngine(config)
    manifest = folder.open(config.to_dict(), config.sha256(), restart=restart)
    shards = plan_shards(seeds, config.shard_size)
    done = {s["index"] for s in manifest["shards"]}
    if done:
        log(f"resuming: {len(done)} of {len(shards)} shards already written")
    record = Recorder(folder, manifest, len(seeds), progress)
    record.bar.update(sum(len(shards[i]) for i in done if i < len(shards)))
    try:
        runner.run(shards, done, folder, record)
    except (OSError, sqlite3.Error) as e:
        raise InputError(
            f"run failed ({type(e).__name__}: {e}); finished shards are intact, run again to resume"
        ) from None
    except ServiceUnavailable as e:
        raise ServiceUnavailable(
            f"{e}; the {len(manifest['shards'])} finished shards and every reply received are kept: "
            "run the same command again once it is back"
        ) from None
    finally:
        record.bar.close()
        runner.close()
    _, _, counters = manifest_totals(manifest)
    manifest.update(
        complete=True,
        engine=engine,
        seed_file={"source": config.seeds.source, **seed_stats},
        wall_seconds=round(time.perf_counter() - started, 2),
        llm_usage={
            "requests": int(counters["llm_requests"]),
            "cache_hits": int(counters["llm_cache_hits"]),
            "completion_tokens": int(counters["llm_completion_tokens"]),
            "seconds": round(counters["llm_seconds"], 2),
        },
    )
    folder.write_manifest(manifest)
    total = sum(s["rows"] for s in manifest["shards"])
    log(f"wrote {total - record.rows_before} new rows; {total} in {len(manifest['shards'])} shards at {folder.root}")
    return manifest
