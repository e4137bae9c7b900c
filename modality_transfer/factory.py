"""Build projectors by name and load them from folders, through one fixed registry."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .base import CONFIG_NAME, FORMAT, VERSION, Projector
from .contrastive import Contrastive
from .errors import InputError
from .learned import Learned
from .methods import Center, Identity, Linear, MeanShift, Noise, Procrustes, ReAlign, UnicornReleased

_REGISTRY: dict[str, type[Projector]] = {
    cls.name: cls
    for cls in (Identity, Center, MeanShift, UnicornReleased, Noise, ReAlign, Linear, Procrustes, Learned, Contrastive)
}
_BUILT_IN = tuple(_REGISTRY)


def list_projectors() -> list[str]:
    """Names of every projector method, in the order the benchmark reports them."""
    return list(_REGISTRY)


def register_projector(cls: type[Projector]) -> type[Projector]:
    """Add a projector method (a `Projector` subclass with a unique `name`): usable by name in `gap fit`, the
    benches and a saved folder's config.json, like the built-in ones. Returns `cls`, so it works as a decorator."""
    if not (isinstance(cls, type) and issubclass(cls, Projector)) or not getattr(cls, "name", None):
        raise InputError(f"a projector is a Projector subclass with a `name`, got {cls!r}")
    _REGISTRY[cls.name] = cls
    return cls


def unregister_projector(name: str) -> None:
    """Remove a projector added with `register_projector`."""
    if name not in _BUILT_IN:
        _REGISTRY.pop(name, None)


def create_projector(method: str, **params: Any) -> Projector:
    """A new, unfitted projector of `method` with its parameters."""
    try:
        cls = _REGISTRY[method]
    except KeyError:
        raise InputError(f"unknown projector method '{method}'; choose one of {', '.join(_REGISTRY)}") from None
    try:
        return cls(**params)
    except TypeError as e:
        raise InputError(f"bad parameters for projector '{method}': {e}") from None


def load_projector(folder: str | os.PathLike) -> Projector:
    """Load a fitted projector saved by `Projector.save`, checking format, version and checksum."""
    folder = Path(folder)
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise InputError(f"{folder} is not a projector folder: {CONFIG_NAME} is missing")
    try:
        config = json.loads(config_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{config_path} is not valid JSON: {e}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise InputError(f"{config_path} is not a {FORMAT} config")
    if config.get("version") != VERSION:
        raise InputError(f"{config_path} has version {config.get('version')}; this library reads version {VERSION}")
    for key, kind in (("method", str), ("dim", int), ("params", dict), ("weights_sha256", str)):
        if not isinstance(config.get(key), kind):
            raise InputError(f"{config_path}: '{key}' is missing or not a {kind.__name__}")
    projector = create_projector(config["method"], **config["params"])
    return type(projector).from_folder(folder, config)
