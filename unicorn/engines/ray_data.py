"""The `ray` engine: the same steps on Ray Data, from one laptop to a cluster.

    seeds -> one dataset row per shard -> map_batches(captions actors) -> dedup on the driver, in shard order
          -> map_batches(instruct actors) -> map_batches(embed actors) -> map_batches(write tasks) -> manifest

A dataset row carries one shard's column batch (`pack`/`unpack`: JSON for text columns, .npy bytes for arrays),
and each actor calls its step on exactly that batch, so the rows equal the local engine's whatever the number of
actors or blocks. Steps that hold a model run in actor pools sized by the config's `ray` section. Dedup must see
every shard in order, so it runs on the driver between the two halves (a barrier: caption text only). Shard files
are written by workers (each under a temporary name), and only the driver writes the manifest, so a driver killed
at any point leaves complete shards or none; a multi-node run needs `--out` on a file system every node mounts.

Request cache: each LLM actor keeps its SQLite cache on its own machine's local disk (never SQLite on the shared
folder) and stores the replies it paid for with each shard, `OUT/replies/<shard>-<step>.jsonl`, written whole by
that one worker; whichever actor works on a shard later (after a kill, on another node, started later) reads that
shard's file first, so no reply is paid for twice across actors, nodes, resumes or engines.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket

import numpy as np

from ..errors import InputError, ServiceUnavailable
from ..llm.cache import store_shard_replies
from ..pipeline.shard import finish_shard, metadata_columns
from ..steps import (
    STEPS,
    Columns,
    Runtime,
    StepRun,
    build_step,
    columns_to_rows,
    rows_to_columns,
    run_steps,
    seed_columns,
    step_names,
)


def pack(batch: Columns) -> dict:
    """One shard's column batch as a Ray row: text columns as JSON, arrays as .npy bytes (exact, no pickle)."""
    row = {"columns": json.dumps({k: v for k, v in batch.items() if not isinstance(v, np.ndarray)})}
    arrays = {k: v for k, v in batch.items() if isinstance(v, np.ndarray)}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        row[f"npy_{name}"] = buffer.getvalue()
    return row


def unpack(row: dict) -> Columns:
    batch = json.loads(row["columns"])
    for key, value in row.items():
        if key.startswith("npy_"):
            batch[key[4:]] = np.load(io.BytesIO(bytes(value)), allow_pickle=False)
    return batch


def shard_row(index: int, seeds: int, runs: dict, columns: Columns) -> dict:
    """The dataset row of one shard: where it is, what each step cost so far, and its packed column batch."""
    return {"index": int(index), "seeds": int(seeds), "runs": json.dumps(runs), **pack(columns)}


def apply_step(step, row: dict, run_dir: str | None = None) -> dict:
    """Run `step` on the shard in `row` through the one step loop (`steps.run_steps`, as every engine does); the
    shard's next row. With `run_dir`, the replies its LLM pays for are stored with the shard (and, through the
    loop, those an earlier attempt stored are used first), even when the step stops on a failing server."""
    cache = getattr(step.llm, "cache", None) if run_dir else None
    try:
        columns, ran = run_steps({step.name: step}, unpack(row), index=int(row["index"]), run_dir=run_dir)
    finally:
        if cache is not None:
            store_shard_replies(cache, run_dir, int(row["index"]), step.name)
    runs = json.loads(row["runs"])
    run = ran[step.name]
    runs[step.name] = {"seconds": run.seconds, "counters": run.counters}
    return shard_row(row["index"], row["seeds"], runs, columns)


class StepActor:
    """A Ray actor that builds one step from plain config and calls it on each shard it is given."""

    def __init__(self, name: str, config, runtime: Runtime, cls=None) -> None:
        # the class travels with the actor: a step registered in the driver (a user's module) needs no registration
        # in the worker
        self.step = (
            cls(config.section(name), seed=config.seed, runtime=runtime) if cls else build_step(name, config, runtime)
        )
        self.run_dir = runtime.run_dir

    def __call__(self, batch: dict) -> dict:
        # Ray hands a batch as columns; each of its rows is one shard
        return rows_to_columns([apply_step(self.step, row, self.run_dir) for row in columns_to_rows(batch)])


def write_shards(batch: dict, root: str, columns: tuple[str, ...]) -> dict:
    """A Ray task: finish and write each shard of the batch; returns its manifest entry for the driver."""
    from ..pipeline.storage import RunFolder

    folder = RunFolder(root)
    entries = []
    for row in columns_to_rows(batch):
        runs = {k: StepRun(v["seconds"], v["counters"]) for k, v in json.loads(row["runs"]).items()}
        result = finish_shard(int(row["index"]), int(row["seeds"]), unpack(row), runs, tuple(columns))
        entries.append(
            {"index": int(row["index"]), "seeds": int(row["seeds"]), "entry": json.dumps(folder.write_shard(result))}
        )
    return rows_to_columns(entries)


def _windows(shards, size: int):
    """Consecutive lists of at most `size` items of an iterator."""
    window = []
    for item in shards:
        window.append(item)
        if len(window) == size:
            yield window
            window = []
    if window:
        yield window


def _service_failure(error: BaseException) -> str | None:
    """The message of a ServiceUnavailable raised in an actor, if that is what `error` is. Ray Data wraps it in
    RayTaskError(UserCodeException) and keeps only the worker's traceback text, not the exception object, so the
    message is read from that text (its last `unicorn.errors.ServiceUnavailable: ...` line)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, ServiceUnavailable):
            return str(error)
        found = re.findall(r"unicorn\.errors\.ServiceUnavailable: (.+)", str(error))
        if found:
            return found[-1].strip()
        error = getattr(error, "cause", None) or error.__cause__ or error.__context__
    return None


def _reachable(address: str) -> None:
    """Refuse an unreachable cluster address in seconds, not after ray.init's long retry loop."""
    if address in ("auto", "local") or address.startswith("ray://"):
        return
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except (OSError, ValueError):
        raise InputError(f"no Ray cluster answers at {address} (is `ray start --head` running there?)") from None


class RayEngine:
    def __init__(self, config, *, address: str | None = None) -> None:
        try:
            import ray
            import ray.data  # noqa: F401
        except ImportError:
            raise InputError("the ray engine needs Ray Data: pip install -e '.[ray]'") from None
        self.ray, self.config = ray, config
        address = address or os.environ.get("RAY_ADDRESS")
        self.started_here = False
        if ray.is_initialized():
            if address:
                current = ray.get_runtime_context().gcs_address
                if address not in ("auto", current):
                    raise InputError(
                        f"this process is already connected to the Ray cluster at {current}, not {address}"
                    )
        else:
            if address:
                _reachable(address)
            try:
                ray.init(address=address, log_to_driver=False, include_dashboard=False, configure_logging=False)
            except (ConnectionError, RuntimeError, ValueError) as e:
                raise InputError(f"cannot start or join Ray ({address or 'local'}): {str(e).splitlines()[0]}") from None
            self.started_here = True
        try:
            self._check_resources()
        except InputError:
            self.close()  # a Ray instance this process started must not outlive the refusal
            raise

    def _check_resources(self) -> None:
        have = self.ray.cluster_resources()
        for name in step_names():
            actor = self.config.ray.actor(name)
            if actor.num_gpus > have.get("GPU", 0):
                raise InputError(
                    f"ray.{name}.num_gpus is {actor.num_gpus} but the cluster has {have.get('GPU', 0):g} GPUs"
                )
            if actor.num_cpus > have.get("CPU", 0):
                raise InputError(
                    f"ray.{name}.num_cpus is {actor.num_cpus} but the cluster has {have.get('CPU', 0):g} CPUs"
                )

    def _map(self, ds, name: str, root, shards: int):
        actor = self.config.ray.actor(name)
        # Each LLM actor keeps its request cache on its machine's local disk and stores each shard's replies with the
        # shard (apply_step), so any later actor on any node finds them.
        runtime = Runtime(run_dir=str(root), per_process=True, threads=max(1, int(actor.num_cpus)), gpus=actor.num_gpus)
        return ds.map_batches(
            StepActor,
            fn_constructor_kwargs={"name": name, "config": self.config, "runtime": runtime, "cls": STEPS[name]},
            batch_size=1,
            batch_format="default",
            # no more actors than shards in this pass: an idle actor would load its model for nothing (and Ray Data
            # warns that the pool cannot be used)
            compute=self.ray.data.ActorPoolStrategy(size=min(actor.concurrency, shards)),
            num_cpus=actor.num_cpus,
            num_gpus=actor.num_gpus,
        )

    def run(self, shards, state, folder, record) -> None:
        try:
            self._run(shards, state, folder, record)
        except Exception as e:  # an actor's error arrives wrapped in Ray's exception types
            message = _service_failure(e)
            if message is None:
                raise
            raise ServiceUnavailable(message) from None

    def _run(self, shards, state, folder, record) -> None:
        """The shards still to do, `window` at a time: one Ray Data pass each, so the driver holds one window's
        seeds and (at the dedup barrier) one window's caption columns, never the run's."""
        import ray.data

        from .local import rebuild_ordered

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False  # the run's own bar counts seeds; Ray's per-operator bars would bury it
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ctx.execution_options.preserve_order = True  # shards are recorded in index order: done is always a prefix
        root = folder.root.resolve()
        ordered: dict | None = None
        try:
            for window in _windows(shards, self.config.ray.window):
                if ordered is None:  # built on the driver once, its state rebuilt from the finished shards
                    ordered = {n: build_step(n, self.config) for n in step_names() if STEPS[n].ordered}
                    rebuild_ordered(ordered.values(), state, folder)
                items = [shard_row(i, len(seeds), {}, seed_columns(seeds)) for i, seeds in window]
                ds = ray.data.from_items(items, override_num_blocks=len(items))
                for name in step_names():
                    ds = self._ordered(ds, ordered[name], [i for i, _ in window]) if name in ordered else \
                        self._map(ds, name, root, len(window))  # fmt: skip
                # Writing is I/O: zero CPUs, so it never waits for the model actors to give their cores back.
                ds = ds.map_batches(
                    write_shards,
                    fn_kwargs={"root": str(root), "columns": list(metadata_columns())},  # the driver's steps decide
                    batch_size=1,
                    batch_format="default",
                    num_cpus=0,
                )
                for row in ds.iter_rows():
                    record(json.loads(row["entry"]), int(row["seeds"]))
        finally:
            for step in (ordered or {}).values():
                step.close()

    def _ordered(self, ds, step, todo: list[int]):
        """Apply an ordered step (dedup) on the driver, shard by shard in index order: a barrier, after which the
        remaining steps start on a new dataset."""
        import ray.data

        arrived = {int(row["index"]): row for row in ds.iter_rows()}
        rows = [apply_step(step, dict(arrived.pop(index))) for index in todo]
        return ray.data.from_items(rows, override_num_blocks=len(rows))

    def close(self) -> None:
        if self.started_here:
            self.ray.shutdown()
