"""The `local` engine: every step in this process, shard after shard, as the seed stream yields them."""

from __future__ import annotations

from ..errors import ServiceUnavailable
from ..llm.cache import load_shard_replies
from ..pipeline.shard import finish_shard
from ..steps import ORDER, Runtime, build_step, run_step, seed_columns


def rebuild_ordered(steps, state, folder) -> None:
    """Give each ordered step (dedup) the state of the finished shards, in index order, from their stored files."""
    ordered = [step for step in steps if step.ordered]
    if not ordered:
        return
    for index in state.done_indices():
        metadata = folder.read_shard(index).metadata
        vectors = folder.read_dedup(index)
        for step in ordered:
            step.remember(metadata, vectors)


class LocalEngine:
    def __init__(self, config) -> None:
        self.config = config
        self.steps: dict = {}

    def run(self, shards, state, folder, record) -> None:
        """Make each (index, seed rows) of `shards` (the ones still to do, in order) and `record` it."""
        # writes cache.sqlite (the run folder of a local run is on this machine), reads what a Ray run left
        runtime = Runtime(run_dir=str(folder.root), threads=self.config.threads)
        self.steps = {name: build_step(name, self.config, runtime) for name in ORDER}
        rebuild_ordered(self.steps.values(), state, folder)
        for index, seeds in shards:
            batch, runs = seed_columns(seeds), {}
            try:
                for name in ORDER:
                    step = self.steps[name]
                    if getattr(step.llm, "cache", None) is not None:  # replies a Ray worker stored for this shard
                        load_shard_replies(step.llm.cache, folder.root, index, name)
                    batch, runs[name] = run_step(step, batch)
            except ServiceUnavailable as e:
                raise e.at_shard(index) from None
            result = finish_shard(index, len(seeds), batch, runs)
            record(folder.write_shard(result), len(seeds))

    def close(self) -> None:
        for step in self.steps.values():
            step.close()
