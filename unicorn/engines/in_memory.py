"""Some of the pipeline's steps over rows, without a run folder: what `unicorn captions` and `unicorn instruct`
call. The same steps, through the same loop (`steps.run_steps`), on the same shard-sized batches, as `unicorn run`,
so the rows agree with a run's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..steps import Columns, Runtime, build_step, run_steps, step_names


def concat(batches: list[Columns]) -> Columns:
    if not batches:
        return {}
    return {
        k: np.concatenate([b[k] for b in batches]) if isinstance(batches[0][k], np.ndarray) else
        [x for b in batches for x in b[k]]
        for k in batches[0]
    }  # fmt: skip


def run_some_steps(
    batches: list[Columns],
    config,
    names: tuple[str, ...],
    *,
    run_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[Columns, Counter]:
    """Apply the steps `names` (in pipeline order) of a RunConfig to each batch in turn; returns the concatenated
    output and the summed step counters and seconds. `run_dir` holds the request cache."""
    unknown = [n for n in names if n not in step_names()]
    if unknown:
        from ..errors import InputError

        raise InputError(f"unknown step {unknown[0]!r}; steps are {', '.join(step_names())}")
    runtime = Runtime(run_dir=str(run_dir) if run_dir else None)
    steps = {name: build_step(name, config, runtime) for name in step_names() if name in names}
    totals: Counter = Counter()
    out = []
    try:
        for k, batch in enumerate(batches):
            batch, runs = run_steps(steps, batch)  # the same loop as every engine's
            for name, run in runs.items():
                totals.update(run.counters)
                totals[f"{name}_seconds"] += run.seconds
            out.append(batch)
            if log:
                log(f"{'+'.join(steps)}: batch {k + 1}/{len(batches)}")
    finally:
        for step in steps.values():
            step.close()
    batch = concat(out)
    batch.pop("dedup_emb", None)  # the dedup step's state for a run folder's resume; nothing a caption file keeps
    return batch, totals
