"""The pipeline's steps, in order: `captions` -> `dedup` -> `instruct` -> `embed`.

Each is built from plain config (`build_step(name, config)`, picklable, so an engine can build it inside a
worker) and maps a column batch to a column batch. Adding a stage is one module here, its config dataclass,
its entry in `STEPS` and its section in `RunConfig`.
"""

from __future__ import annotations

from .base import NO_RUNTIME, Columns, Runtime, Step, StepRun, alive, columns_to_rows, rows_to_columns, run_step
from .captions import CaptionsConfig, CaptionsStep, seed_columns
from .dedup import DedupConfig, DedupStep
from .embed import EmbedConfig, EmbedStep
from .instruct import InstructConfig, InstructStep

STEPS: dict[str, type[Step]] = {
    "captions": CaptionsStep,
    "dedup": DedupStep,
    "instruct": InstructStep,
    "embed": EmbedStep,
}
ORDER = tuple(STEPS)


def build_step(name: str, config, runtime: Runtime = NO_RUNTIME) -> Step:
    """The step `name` of a `RunConfig` (its section of the same name, and the run's seed)."""
    if name not in STEPS:
        from ..errors import InputError

        raise InputError(f"unknown step {name!r}; steps are {', '.join(ORDER)}")
    return STEPS[name](getattr(config, name), seed=config.seed, runtime=runtime)


__all__ = [
    "ORDER",
    "STEPS",
    "CaptionsConfig",
    "CaptionsStep",
    "Columns",
    "DedupConfig",
    "DedupStep",
    "EmbedConfig",
    "EmbedStep",
    "InstructConfig",
    "InstructStep",
    "Runtime",
    "Step",
    "StepRun",
    "alive",
    "build_step",
    "columns_to_rows",
    "rows_to_columns",
    "run_step",
    "seed_columns",
]
