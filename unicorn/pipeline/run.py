"""`run_pipeline`: seeds -> shards -> the steps (captions, dedup, instruct, embed) on an engine -> shard files.

Seeds stream in shards of `shard_size`; a shard is the batch every step sees, on every engine, and the unit
that is written whole and recorded in the run's journal. A killed run (SIGKILL included) resumes at the shards the
journal lacks; the dedup state is rebuilt from the finished shards, in order, so a resumed run writes exactly
the rows of a clean run, and every LLM reply already paid for comes from the request cache.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import InputError, ServiceUnavailable
from ..seeds import iter_seeds, seed_count_hint
from .config import RunConfig, preflight
from .storage import RunFolder, RunState, seeds_sha256

ENGINES = ("local", "ray")


class Recorder:
    """The driver's side of a run: appends each finished shard's record to the journal (the only writer of it).

    Its cost per shard is one journal append and a progress update, whatever the number of shards done."""

    def __init__(
        self, folder: RunFolder, state: RunState, total_seeds: int | None, progress: bool, started: float
    ) -> None:
        self.folder, self.state = folder, state
        self.bar = tqdm(total=total_seeds, desc="run", unit="seed", disable=not progress, smoothing=0.05)
        self.rows_before = state.rows
        self.pending: dict[int, str] = {}  # shard -> hash of its seed rows, for the shards in flight only
        self.planned = 0  # shards the seed stream has made so far
        self.started, self.startup = started, None  # startup: until work on the first new shard began
        self.seconds = 0.0  # spent recording (the bookkeeping per shard that bench/scale.py measures)

    def __call__(self, entry: dict, seeds: int) -> None:
        start = time.perf_counter()
        if self.startup is None:  # until work on the first new shard began: model loads, a resume's checks
            self.startup = start - self.started - entry["seconds"].get("total", 0.0)
        entry["seeds_sha256"] = self.pending.pop(entry["index"])
        self.folder.append_record(entry, self.state)  # the shard counts as done from here on
        self.bar.update(seeds)
        self.bar.set_postfix(rows=self.state.rows, refresh=False)
        self.seconds += time.perf_counter() - start


def plan(shards, state: RunState, record: Recorder, source: str) -> Iterator[tuple[int, list]]:
    """(index, seed rows) of each shard still to do, streamed from the seed file. A finished shard is skipped once
    its seed rows are checked against the hash recorded with it: a resume never keeps rows of other seeds."""
    for index, seeds in shards:
        record.planned = index + 1
        if state.done(index):
            if not state.seeds_match(index, seeds):
                raise InputError(
                    f"shard {index} was made from other seed rows than {source} now holds (the seed file changed "
                    "under a finished shard); restore the seeds, run into another folder, or pass --restart"
                )
            record.bar.update(len(seeds))
            continue
        record.pending[index] = seeds_sha256(seeds)
        yield index, seeds


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

    Seeds stream from their source shard by shard, so memory does not grow with the seed file. `address` (ray
    only) joins an existing Ray cluster; without it a local Ray instance starts (or the one this process already
    started is used)."""
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; engines are {', '.join(ENGINES)}")
    if address and engine != "ray":
        raise InputError("--address is for --engine ray")
    started = time.perf_counter()
    folder = RunFolder(out)
    stream = iter_seeds(config.seeds.source, limit=config.seeds.limit)
    shards = stream.shards(config.shard_size)
    first = next(shards)  # a source without a usable seed is refused before the output folder is touched
    preflight(config)  # a typo in a path or a width mismatch: before any model loads or the folder is touched
    if engine == "ray":
        from ..engines.ray_data import RayEngine

        runner = RayEngine(config, address=address)  # checks the cluster before touching out
    else:
        from ..engines.local import LocalEngine

        runner = LocalEngine(config)
    manifest, state = folder.open(config.to_dict(), config.sha256(), restart=restart)
    if state.records:
        log(f"resuming: {state.records} shards already written")
    record = Recorder(folder, state, seed_count_hint(config.seeds.source, config.seeds.limit), progress, started)
    try:
        todo = plan(itertools.chain([first], shards), state, record, config.seeds.source)
        # the finished shards come first: their seed rows are checked before any model loads
        ahead = next(todo, None)
        runner.run(itertools.chain([ahead] if ahead else [], todo), state, folder, record)
    except (OSError, sqlite3.Error) as e:
        raise InputError(
            f"run failed ({type(e).__name__}: {e}); finished shards are intact, run again to resume"
        ) from None
    except ServiceUnavailable as e:
        raise ServiceUnavailable(
            f"{e}; the {state.records} finished shards and every reply received are kept: "
            "run the same command again once it is back"
        ) from None
    finally:
        record.bar.close()
        runner.close()
        folder.close()
    if state.max_index >= record.planned:
        raise InputError(
            f"{folder.root} records shard {state.max_index} but {config.seeds.source} now makes {record.planned} "
            "shards (the seed file shrank under a finished run); restore the seeds, or pass --restart"
        )
    counters = state.counters
    manifest = folder.finish(
        manifest,
        state,
        engine=engine,
        seed_file={"source": config.seeds.source, **stream.stats},
        wall_seconds=round(time.perf_counter() - started, 2),
        record_seconds=round(record.seconds, 4),
        startup_seconds=round(record.startup or 0.0, 3),
        llm_usage={
            "requests": int(counters["llm_requests"]),
            "cache_hits": int(counters["llm_cache_hits"]),
            "completion_tokens": int(counters["llm_completion_tokens"]),
            "seconds": round(counters["llm_seconds"], 2),
        },
    )
    log(f"wrote {state.rows - record.rows_before} new rows; {state.rows} in {state.records} shards at {folder.root}")
    return manifest
