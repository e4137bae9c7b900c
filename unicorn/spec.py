"""One parser for every spec string: `schema:id`, e.g. `openclip:ViT-B-32/laion2b_s34b_b79k`, `st:default`."""

from __future__ import annotations

from .errors import InputError


def parse_spec(spec: str, schemas: tuple[str, ...], kind: str) -> tuple[str, str]:
    """Split `spec` into (schema, id), refusing unknown schemas and empty ids with the valid choices."""
    schema, sep, ident = str(spec).partition(":")
    if not sep and schema in schemas:
        ident = ""
    if not sep and schema not in schemas:
        raise InputError(f"{kind} spec '{spec}' has no schema; use one of {', '.join(s + ':...' for s in schemas)}")
    if schema not in schemas:
        raise InputError(f"unknown {kind} schema '{schema}' in '{spec}'; use one of {', '.join(schemas)}")
    if not ident.strip():
        raise InputError(f"{kind} spec '{spec}' names no model after '{schema}:'")
    return schema, ident.strip()
