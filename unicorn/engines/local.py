"""The `local` engine: every step in this process, shard after shard."""

from __future__ import annotations

from ..errors import ServiceUnavailable
from ..pipeline.shard import finish_shard
from ..steps import ORDER, Runtime, build_step, run_step, seed_columns


class LocalEngine:
    def __init__(self, config) -> None:
        self.config = config
        self.steps: dict = {}

    def run(self, shards: list[list[dict]], done: set[int], folder, record) -> None:
        # writes cache.sqlite, reads any files a Ray run left
        runtime = Runtime(run_dir=str(folder.root), threads=self.config.threads)
        self.steps = {name: build_step(name, self.config, runtime) for name in ORDER}
        for index in sorted(done):
            metadata = folder.read_shard(index)[0]
            for step in self.steps.values():
                if step.ordered:
                    step.remember(metadata)
        for index, seeds in enumerate(shards):
            if index in done:
                continue
            batch, runs = seed_columns(seeds), {}
            try:
                for name in ORDER:
                    batch, runs[name] = run_step(self.steps[name], batch)
            except ServiceUnavailable as e:
                raise e.at_shard(index) from None
            result = finish_shard(index, len(seeds), batch, runs)
            record(folder.write_shard(result), len(seeds))

    def close(self) -> None:
        for step in self.steps.values():
            step.close()
