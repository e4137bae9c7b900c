"""Text and image encoders behind one interface, built from a spec string."""

from __future__ import annotations

from ..registry import Registry
from ..spec import parse_spec
from .base import Encoder, quiet_loading

ENCODERS = Registry(
    "encoder",
    {
        "world": ".world:WorldClipEncoder",
        "openclip": ".openclip:OpenClipEncoder",
        "hf": ".hf:HFClipEncoder",
        "st": ".st:SentenceTransformerEncoder",
    },  # fmt: skip
    __name__,
    Encoder,
)
SCHEMAS = ENCODERS.names()  # the built-in ones; list_encoders() includes those registered later


def list_encoders() -> tuple[str, ...]:
    return ENCODERS.names()


def register_encoder(schema: str, cls: type[Encoder]) -> type[Encoder]:
    """Add an encoder (a subclass of `Encoder`, built as `cls(ident, device=...)`), usable as `schema:ID`."""
    return ENCODERS.register(schema, cls)


def encoder_dim(spec: str) -> int | None:
    """The width `spec` will embed to, from its config alone (None where only loading it would tell); also checks
    the spec's schema."""
    schema, ident = parse_spec("world:default" if spec == "world" else spec, ENCODERS.names(), "encoder")
    return ENCODERS.get(schema).declared_dim(ident)


def create_encoder(spec: str, *, device: str | None = None) -> Encoder:
    """Build an encoder: `world[:FOLDER]`, `openclip:ARCH/PRETRAINED`, `openclip:ARCH@/path`, `hf:NAME_OR_DIR`,
    `st:NAME_OR_DIR`, or a registered one's `SCHEMA:ID`."""
    schema, ident = parse_spec("world:default" if spec == "world" else spec, ENCODERS.names(), "encoder")
    cls = ENCODERS.get(schema)
    with quiet_loading():
        return cls(ident, device=device)


__all__ = ["Encoder", "SCHEMAS", "create_encoder", "encoder_dim", "list_encoders", "register_encoder"]
