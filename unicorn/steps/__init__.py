"""The pipeline's steps, in order: `captions` -> `dedup` -> `instruct` -> `embed`.

Each is built from plain config (`build_step(name, config)`, picklable, so an engine can build it inside a
worker) and maps a column batch to a column batch. A step declares its config section (`config_class`), the
metadata columns it adds (`metadata`) and its default Ray actor (`ray_defaults`); the engines, the shard record,
the report and the config loader take them from the step. Adding a stage is one module with its Step subclass
and `register_step(MyStep)` (from anywhere: a user's module works the same), plus its section in the YAML.
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
BUILT_IN = tuple(STEPS)


def step_names() -> tuple[str, ...]:
    """The registered steps, in pipeline order."""
    return tuple(STEPS)


list_steps = step_names


def register_step(cls: type[Step], *, before: str | None = None) -> type[Step]:
    """Add a step to the pipeline: at the end, or just before the step `before`. Its `config_class` becomes the
    YAML section of its `name`; registering a name twice replaces the step (its position stays)."""
    from ..errors import InputError

    if not getattr(cls, "name", None) or not getattr(cls, "config_class", None):
        raise InputError("a step needs a `name` and a `config_class` (its section of the YAML)")
    if before is not None and before not in STEPS:
        raise InputError(f"unknown step {before!r}; steps are {', '.join(STEPS)}")
    if cls.name in STEPS or before is None:
        STEPS[cls.name] = cls
        return cls
    items = list(STEPS.items())
    at = [name for name, _ in items].index(before)
    STEPS.clear()
    STEPS.update([*items[:at], (cls.name, cls), *items[at:]])
    return cls


def unregister_step(name: str) -> None:
    """Remove a step added with `register_step` (the built-in steps stay)."""
    if name not in BUILT_IN:
        STEPS.pop(name, None)


def build_step(name: str, config, runtime: Runtime = NO_RUNTIME) -> Step:
    """The step `name` of a `RunConfig` (its section of the same name, and the run's seed)."""
    if name not in STEPS:
        from ..errors import InputError

        raise InputError(f"unknown step {name!r}; steps are {', '.join(STEPS)}")
    return STEPS[name](config.section(name), seed=config.seed, runtime=runtime)


def run_steps(steps: dict[str, Step], batch: Columns, *, index: int | None = None, run_dir=None):
    """The one step loop, for every engine and the CLI's partial runs: each step of `steps` (in order) on `batch`,
    one shard; returns (batch, {name: StepRun}). With `run_dir` and `index`, an LLM step first takes the replies
    a worker stored for this shard (`llm.cache.load_shard_replies`)."""
    from ..errors import ServiceUnavailable
    from ..llm.cache import load_shard_replies

    runs: dict[str, StepRun] = {}
    try:
        for name, step in steps.items():
            cache = getattr(step.llm, "cache", None)
            if cache is not None and run_dir is not None and index is not None:
                load_shard_replies(cache, run_dir, index, name)
            batch, runs[name] = run_step(step, batch)
    except ServiceUnavailable as e:
        raise (e.at_shard(index) if index is not None else e) from None
    return batch, runs


__all__ = [
    "STEPS",
    "build_step",
    "list_steps",
    "register_step",
    "run_steps",
    "step_names",
    "unregister_step",
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
