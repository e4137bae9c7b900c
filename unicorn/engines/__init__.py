"""Engines run the pipeline's steps over the shards: `local` (this process) and `ray` (Ray Data).

Both call the same steps on the same batches (one shard each) through `steps.run_step`, and write through the
same `RunFolder`; they differ only in where a step runs.
"""
