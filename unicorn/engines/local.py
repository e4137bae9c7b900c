"""The `local` engine: every step in this process, shard after shard, as the seed stream yields them."""

from __future__ import annotations

from ..pipeline.shard import finish_shard
from ..steps import Runtime, build_step, run_steps, seed_columns, step_names


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
        self.steps = {name: build_step(name, self.config, runtime) for name in step_names()}
        rebuild_ordered(self.steps.values(), state, folder)
        for index, seeds in shards:
            # the one step loop; an LLM step first takes the replies a Ray worker stored for this shard
            batch, runs = run_steps(self.steps, seed_columns(seeds), index=index, run_dir=folder.root)
            result = finish_shard(index, len(seeds), batch, runs)
            record(folder.write_shard(result), len(seeds))

    def close(self) -> None:
        for step in self.steps.values():
            step.close()
