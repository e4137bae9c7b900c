"""A step: one stage of the pipeline, built from plain config, mapping a column batch to a column batch.

The shape is Ray Data's `map_batches`: `dict[str, list | np.ndarray]` in, the same out, one entry per row.
Rows a step rejects stay in the batch with the reason in the `reject` column, so no side channel carries
them and every later step simply passes them through. A step keeps no state across batches unless it says
so (`ordered = True`, as dedup does): such a step must see every batch, in shard order, and its state is
explicit, so a resumed run can rebuild it.

The local engine and the Ray engine call the very same steps, on the very same batches (one batch = one
shard of seeds), which is what makes their output identical.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..errors import InputError

Columns = dict[str, Any]  # column name -> list or np.ndarray, all of one length


@dataclass(frozen=True)
class Runtime:
    """How a step runs, never what it writes: none of this enters the config's checksum.

    run_dir: the run folder whose request cache the step's LLM uses (None: no cache). per_process: a worker of a
    cluster: its SQLite cache lives on this machine's local disk (SQLite's WAL does not work over a network file
    system, where the run folder may be), and the engine stores each shard's replies with the shard
    (`replies/`); the run's `cache.sqlite` and earlier runs' `cache/*.sqlite` are still read.
    threads: CPU threads for an in-process model; gpus: GPUs this worker holds (vLLM's tensor parallelism).
    """

    run_dir: str | None = None
    per_process: bool = False
    threads: int | None = None
    gpus: float = 0

    def request_cache(self):
        if self.run_dir is None:
            return None
        import glob
        import hashlib
        import os
        import socket
        import tempfile

        from ..llm import RequestCache

        main = os.path.join(self.run_dir, "cache.sqlite")
        run_id = hashlib.sha256(os.path.abspath(self.run_dir).encode()).hexdigest()[:16]
        here = os.path.join(tempfile.gettempdir(), "unicorn-cache", run_id)  # this machine's local disk
        local = os.path.join(here, f"{socket.gethostname()}-{os.getpid()}.sqlite")
        # this machine's earlier workers of the run (a killed actor's replies of a shard it never finished), and
        # format-1 runs' worker files in the run folder
        others = sorted(glob.glob(os.path.join(here, "*.sqlite"))) + sorted(
            glob.glob(os.path.join(self.run_dir, "cache", "*.sqlite"))
        )
        return RequestCache(local if self.per_process else main, read_also=[main, *others])


NO_RUNTIME = Runtime()  # no request cache, default threads


def num_rows(batch: Columns) -> int:
    lengths = {len(v) for v in batch.values()}
    if len(lengths) > 1:
        raise InputError(f"column batch has columns of different lengths: { {k: len(v) for k, v in batch.items()} }")
    return lengths.pop() if lengths else 0


def alive(batch: Columns) -> list[int]:
    """Positions of the rows no step has rejected."""
    return [i for i, r in enumerate(batch.get("reject", [None] * num_rows(batch))) if r is None]


def columns_to_rows(batch: Columns) -> list[dict]:
    return [{k: v[i] for k, v in batch.items()} for i in range(num_rows(batch))]


def rows_to_columns(rows: list[dict]) -> Columns:
    """The inverse of `columns_to_rows`, for rows that share their keys (lists, not arrays)."""
    return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}


class Step:
    """Base class: subclasses set `name`, build their models in `__init__` and implement `__call__`."""

    name: ClassVar[str]
    config_class: ClassVar[type]  # a frozen dataclass: the step's section of the run's YAML (validated on load)
    metadata: ClassVar[tuple[str, ...]] = ()  # columns this step adds that each shard's metadata keeps
    ray_defaults: ClassVar[dict] = {}  # its actor under --engine ray unless the YAML's `ray:` says otherwise
    ordered: ClassVar[bool] = False  # True: sees every batch in shard order, with explicit state (dedup)
    llm = None  # a step that writes with an LLM keeps it here: the base reports its usage and closes it

    def __call__(self, batch: Columns) -> Columns:
        raise NotImplementedError

    def remember(self, metadata: Columns, vectors=None) -> None:
        """Ordered steps only: rebuild the state from a finished shard's metadata columns and the vectors the step
        stored with it (`dedup_emb`; None where the run has none), on resume."""
        raise NotImplementedError(f"step {self.name} keeps no state across batches")

    def counters(self) -> dict[str, float]:
        """Running totals worth reporting (LLM requests, cache hits, tokens, seconds in the model)."""
        return llm_counters(self.llm)

    def close(self) -> None:
        """Release models, connections and files."""
        if self.llm is not None:
            self.llm.close()


def llm_options(spec: str, runtime: Runtime) -> dict:
    """create_llm keyword arguments for this runtime: the cache, and what the backend itself makes of the worker's
    threads and GPUs (`LLM.runtime_options`: llama.cpp threads, vLLM tensor parallelism, ...)."""
    from ..llm import backend_class

    runtime_options = backend_class(spec).runtime_options(threads=runtime.threads, gpus=runtime.gpus)
    return {"cache": runtime.request_cache(), **runtime_options}


@dataclass
class StepRun:
    """What one call of a step cost: wall seconds and the change in its counters."""

    seconds: float
    counters: dict[str, float] = field(default_factory=dict)


def run_step(step: Step, batch: Columns) -> tuple[Columns, StepRun]:
    """Call `step` on `batch`, timing it and diffing its counters; every engine calls steps through this."""
    before = step.counters()
    start = time.perf_counter()
    out = step(batch)
    seconds = time.perf_counter() - start
    after = step.counters()
    return out, StepRun(seconds, {k: after[k] - before.get(k, 0) for k in after})


def llm_counters(llm) -> dict[str, float]:
    if llm is None:
        return {}
    u = llm.usage
    return {
        "llm_requests": u.requests,
        "llm_cache_hits": u.cache_hits,
        "llm_completion_tokens": u.completion_tokens,
        "llm_seconds": u.seconds,
        "llm_schema_fallbacks": getattr(llm, "schema_fallbacks", 0),  # openai: JSON schemas the server refused
        "llm_prefix_hits": getattr(llm, "prefix_hits", 0),  # llamacpp: requests that restored a saved prefix
    }
