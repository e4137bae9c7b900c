"""A small registry of named classes, built-in ones imported only when first used (optional backends stay optional).

Used for LLM backends, encoders and step lookups: `register(name, cls)` adds one from anywhere (a user's module),
`names()` lists them, `get(name)` returns the class. Types are looked up here by name, never by an import path read
from a file."""

from __future__ import annotations

import importlib

from .errors import InputError


class Registry:
    def __init__(self, kind: str, builtin: dict[str, str], package: str, base: type) -> None:
        self.kind, self.package, self.base = kind, package, base
        self._entries: dict[str, str | type] = dict(builtin)  # name -> ".module:Class" (lazy) or the class

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def register(self, name: str, cls: type) -> type:
        """Add `cls` (a subclass of the registry's base) under `name`, usable as `name:ID` in any spec."""
        if not isinstance(cls, type) or not issubclass(cls, self.base):
            base = f"{self.base.__module__.rsplit('.', 1)[0]}.{self.base.__name__}"
            raise InputError(f"{self.kind} classes must subclass {base}, got {cls!r}")
        if not name or ":" in name:
            raise InputError(f"a {self.kind} is registered under a name without ':', got {name!r}")
        self._entries[name] = cls
        return cls

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> type:
        entry = self._entries.get(name)
        if entry is None:
            raise InputError(f"unknown {self.kind} {name!r}; registered: {', '.join(self._entries)}")
        if isinstance(entry, str):
            module, _, attr = entry.partition(":")
            entry = getattr(importlib.import_module(module, self.package), attr)
            self._entries[name] = entry
        return entry
