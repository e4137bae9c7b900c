"""Text and image encoders behind one interface, built from a spec string."""

from __future__ import annotations

from ..spec import parse_spec
from .base import Encoder

SCHEMAS = ("openclip", "hf", "st")


def create_encoder(spec: str, *, device: str | None = None) -> Encoder:
    """Build an encoder: `openclip:ARCH/PRETRAINED`, `openclip:ARCH@/path`, `hf:NAME_OR_DIR`, `st:NAME_OR_DIR`."""
    schema, ident = parse_spec(spec, SCHEMAS, "encoder")
    if schema == "openclip":
        from .openclip import OpenClipEncoder

        return OpenClipEncoder(ident, device=device)
    if schema == "hf":
        from .hf import HFClipEncoder

        return HFClipEncoder(ident, device=device)
    from .st import SentenceTransformerEncoder

    return SentenceTransformerEncoder(ident, device=device)


__all__ = ["Encoder", "SCHEMAS", "create_encoder"]
