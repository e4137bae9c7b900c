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

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"


@dataclass(frozen=True)
class SeedsConfig:
    source: str = "seeds/world.jsonl"
    limit: int | None = None


@dataclass(frozen=True)
class CaptionsConfig:
    llm: str = "llamacpp:default"
    k: int = 2
    max_tokens: int = 96
    temperature: float = 0.9
    include_seeds: bool = True  # keep each seed caption as a row beside its variants
    min_faithfulness: float = 0.5
    dedup_threshold: float = 0.95
    judge: bool = False
    filter_encoder: str = "st:default"
    prompt: str = "caption"
    personas: str = "personas"


@dataclass(frozen=True)
class InstructConfig:
    programs: bool = True  # exact QA from scene graphs where a row has one
    turns: int = 4
    llm_share: float = 0.25  # share of rows that also get an LLM-written conversation
    min_turns: int = 3
    max_turns: int = 5
    max_tokens: int = 320
    repairs: int = 1


@dataclass(frozen=True)
class EmbedConfig:
    encoder: str = "world"
    projector: str = "checkpoints/world-projector"
    batch_size: int = 64


@dataclass(frozen=True)
class RunConfig:
    seeds: SeedsConfig = field(default_factory=SeedsConfig)
    captions: CaptionsConfig = field(default_factory=CaptionsConfig)
    instruct: InstructConfig = field(default_factory=InstructConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    shard_size: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("shard_size", self.shard_size >= 1),
            ("captions.k", self.captions.k >= 0),
            ("captions.max_tokens", self.captions.max_tokens >= 1),
            ("instruct.llm_share", 0 <= self.instruct.llm_share <= 1),
            ("instruct.turns", self.instruct.turns >= 1),
            ("embed.batch_size", self.embed.batch_size >= 1),
            ("seeds.limit", self.seeds.limit is None or self.seeds.limit >= 1),
        ]
        for name, ok in checks:
            if not ok:
                raise InputError(f"config key {name} is out of range")
        if self.captions.k == 0 and not self.captions.include_seeds:
            raise InputError("config makes no rows: captions.k is 0 and captions.include_seeds is false")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def sha256(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _build(cls, data, path: str):
    if not isinstance(data, dict):
        raise InputError(f"config key {path or 'top level'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        key = f"{path}.{unknown[0]}" if path else unknown[0]
        raise InputError(f"unknown config key {key}; known here: {', '.join(sorted(names))}")
    values = {}
    for name, value in data.items():
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
    """Read and validate a YAML run config (default: `configs/default.yaml`)."""
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.is_file():
        raise InputError(f"config file {path} not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise InputError(f"config {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    config = _build(RunConfig, {**data, **(overrides or {})}, "")
    return dataclasses.replace(
        config,
        seeds=dataclasses.replace(config.seeds, source=_near(config.seeds.source, path.parent)),
        embed=dataclasses.replace(config.embed, projector=_near(config.embed.projector, path.parent)),
    )


def _near(value: str, folder: Path) -> str:
    """A relative path is read from the config's own folder when it names something there, else from the cwd."""
    if ":" in value.split("/")[0] or Path(value).is_absolute():  # a source spec such as world:32 or hf:NAME
        return value
    return str((folder / value).resolve()) if (folder / value).exists() else value
