"""The run config: YAML validated on load, so an unknown key or a wrong type is one error naming the key."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import InputError
from ..resources import shipped
from ..steps import CaptionsConfig, DedupConfig, EmbedConfig, InstructConfig

DEFAULT_CONFIG = shipped("configs/default.yaml")


@dataclass(frozen=True)
class SeedsConfig:
    source: str = "seeds/world.jsonl"
    limit: int | None = None


@dataclass(frozen=True)
class ActorConfig:
    """Resources of one step under `--engine ray`: how many actors, and what each asks of the cluster."""

    concurrency: int = 1  # actors (model copies) for this step
    num_cpus: float = 1  # also the threads an in-process model (llama.cpp) uses
    num_gpus: float = 0

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.num_cpus < 0 or self.num_gpus < 0:
            raise InputError(
                f"ray actors need concurrency >= 1, num_cpus >= 0, num_gpus >= 0; got {self.concurrency}, "
                f"{self.num_cpus}, {self.num_gpus}"
            )


@dataclass(frozen=True)
class RayConfig:
    """`--engine ray` only. Not part of the config's checksum: resources never change what a run writes. A step
    registered from outside (`steps.register_step`) gets its actor from a key of its name, else its defaults."""

    captions: ActorConfig = field(default_factory=ActorConfig)
    dedup: ActorConfig = field(default_factory=ActorConfig)  # runs on the driver, in shard order
    instruct: ActorConfig = field(default_factory=ActorConfig)
    embed: ActorConfig = field(default_factory=ActorConfig)
    # shards per Ray Data pass: the driver holds one window's seeds and, at the dedup barrier, one window's
    # captions; each pass starts its actor pools (one model load per actor), so larger windows amortise that
    window: int = 256
    extra: dict = field(default_factory=dict)  # actors of registered steps, by step name

    def __post_init__(self) -> None:
        if self.window < 1:
            raise InputError(f"config key ray.window is out of range: must be >= 1, got {self.window}")

    def actor(self, step: str) -> ActorConfig:
        """The actor of `step`: its key here, else the step's `ray_defaults`."""
        if step in self.extra:
            return self.extra[step]
        if step in {f.name for f in dataclasses.fields(self)} - {"window", "extra"}:
            return getattr(self, step)
        from ..steps import STEPS

        return ActorConfig(**getattr(STEPS.get(step), "ray_defaults", {}))

    @staticmethod
    def _extra_section(name: str):
        from ..steps import STEPS

        return ActorConfig if name in STEPS else None


@dataclass(frozen=True)
class RunConfig:
    seeds: SeedsConfig = field(default_factory=SeedsConfig)
    captions: CaptionsConfig = field(default_factory=CaptionsConfig)
    dedup: DedupConfig = field(default_factory=DedupConfig)
    instruct: InstructConfig = field(default_factory=InstructConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    ray: RayConfig = field(default_factory=RayConfig)
    # --engine local: threads of an in-process model (llama.cpp); null = the CPUs this process may use (its
    # affinity mask), never the machine's count. Not in the checksum: threads change speed, not replies.
    threads: int | None = None
    shard_size: int = 16  # seeds per shard: the unit of work, of resume and of every step's batch
    seed: int = 0
    extra: dict = field(default_factory=dict)  # sections of steps registered from outside, by step name

    def __post_init__(self) -> None:
        if self.shard_size < 1:
            raise InputError(f"config key shard_size is out of range: must be >= 1, got {self.shard_size}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"config key threads is out of range: must be >= 1 or null, got {self.threads}")
        if self.seeds.limit is not None and self.seeds.limit < 1:
            raise InputError(f"config key seeds.limit is out of range: must be >= 1, got {self.seeds.limit}")

    def section(self, step: str):
        """The config section of `step`: a built-in one, a registered step's section, or that step's defaults."""
        if step in self.extra:
            return self.extra[step]
        if step in {f.name for f in dataclasses.fields(self)}:
            return getattr(self, step)
        from ..steps import STEPS

        if step not in STEPS:
            raise InputError(f"unknown step {step!r}; steps are {', '.join(STEPS)}")
        return STEPS[step].config_class()

    @staticmethod
    def _extra_section(name: str):
        from ..steps import STEPS

        return STEPS[name].config_class if name in STEPS else None

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        for section in (data, data["ray"]):  # registered steps' sections sit at the top level, as in the YAML
            section.update(section.pop("extra"))
        return data

    def sha256(self) -> str:
        """Checksum of everything that shapes the output (so not the `ray` section nor `threads`)."""
        shaping = {k: v for k, v in self.to_dict().items() if k not in ("ray", "threads")}
        return hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()


def _build(cls, data, path: str):
    if not isinstance(data, dict):
        raise InputError(f"config key {path or 'top level'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
    extra_of = getattr(cls, "_extra_section", lambda name: None)
    values, extra = {}, {}
    unknown = sorted(k for k in set(data) - names if extra_of(k) is None)
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise InputError(f"unknown config key {key}; known here: {', '.join(sorted(names))}")
    for name in sorted(set(data) - names):  # the section of a registered step
        extra[name] = _build(extra_of(name), data[name], f"{path}.{name}" if path else name)
    if extra:
        values["extra"] = extra
    for name, value in data.items():
        if name in extra:
            continue
        key = f"{path}.{name}" if path else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, value, key)
        else:
            values[name] = _check_type(value, hint, key)
    return cls(**values)


def _check_type(value, hint, key: str):
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    for t in allowed:
        if t is type(None) and value is None:
            return value
        if t is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t in (str, bool) and isinstance(value, t):
            return value
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise InputError(f"config key {key} must be {names}, got {type(value).__name__} {value!r}")


def load_config(path: str | Path | None = None, overrides: dict | None = None) -> RunConfig:
    """Read and validate a YAML run config (default: `configs/default.yaml`); `overrides` ({section: {key: value}})
    change single keys of the file's sections."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise InputError(f"config file {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"config {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    # overrides merge into the file's sections key by key: {"captions": {"k": 2}} changes k and keeps the rest
    merged = dict(data)
    for key, value in (overrides or {}).items():
        both = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = {**merged[key], **value} if both else value
    config = _build(RunConfig, merged, "")
    return dataclasses.replace(
        config,
        seeds=dataclasses.replace(config.seeds, source=_near(config.seeds.source, path.parent)),
        embed=dataclasses.replace(config.embed, projector=_near(config.embed.projector, path.parent)),
    )


def _near(value: str, folder: Path) -> str:
    """A relative path is read from the config's own folder when it names something there, else from the cwd."""
    if ":" in value.split("/")[0] or Path(value).is_absolute():  # a source spec such as world:32 or hf:NAME
        return value
    if (folder / value).exists():
        return str((folder / value).resolve())
    if not Path(value).exists() and shipped(value).exists():  # e.g. checkpoints/world-projector after pip install .
        return str(shipped(value))
    return value


def preflight(config: RunConfig) -> None:
    """What can be checked before the output folder is touched or a model loads: every model spec's schema, the
    projector folder (and that its width matches the encoder's, where the encoder's config says it), and the
    prompt and persona files. A mistake here costs a second and leaves no run behind to refuse the corrected config.
    """
    from modality_transfer import load_projector

    from ..encoders import encoder_dim
    from ..llm import backend_class
    from ..prompts import load_lines, load_text

    c = config
    if c.captions.k:
        backend_class(c.captions.llm)
        load_text(c.captions.prompt, fields=("seed", "persona"))
        load_lines(c.captions.personas)
        encoder_dim(c.captions.filter_encoder)
    if c.instruct.llm_share > 0:
        backend_class(c.instruct.llm)
    encoder_dim(c.dedup.encoder)
    projector = load_projector(c.embed.projector)
    width = encoder_dim(c.embed.encoder)
    if width is not None and width != projector.dim:
        raise InputError(
            f"embed.projector {c.embed.projector} maps {projector.dim}-d embeddings but embed.encoder "
            f"{c.embed.encoder} makes {width}-d ones; fit a projector for this encoder (`unicorn gap fit --pairs ... "
            f"--encoder {c.embed.encoder}`)"
        )
