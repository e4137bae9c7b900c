"""Text and image encoders behind one interface, built from a spec string."""

from __future__ import annotations

from ..spec import parse_spec
from .base import Encoder, quiet_loading

SCHEMAS = ("world", "openclip", "hf", "st")


def create_encoder(spec: str, *, device: str | None = None) -> Encoder:
    """Build an encoder: `world[:FOLDER]`, `openclip:ARCH/PRETRAINED`, `openclip:ARCH@/path`, `hf:NAME_OR_DIR`,
    `st:NAME_OR_DIR`."""
    schema, ident = parse_spec("world:default" if spec == "world" else spec, SCHEMAS, "encoder")
    if schema == "world":
        from .world import WorldClipEncoder as cls
    elif schema == "openclip":
        from .openclip import OpenClipEncoder as cls
    elif schema == "hf":
        from .hf import HFClipEncoder as cls
    else:
        from .st import SentenceTransformerEncoder as cls
    with quiet_loading():
        return cls(ident, device=device)


__all__ = ["Encoder", "SCHEMAS", "create_encoder"]
