"""World-CLIP, the project's own CLIP of the procedural world: `world` (the shipped checkpoint) or `world:FOLDER`."""

from __future__ import annotations

from ..world import clip
from .base import Encoder
from .openclip import OpenClipEncoder


class WorldClipEncoder(OpenClipEncoder):
    """A world-CLIP checkpoint folder, served through the same adapter as any open_clip model."""

    def __init__(self, ident: str, *, device: str | None = None) -> None:
        Encoder.__init__(self, device=device)
        folder = None if ident == "default" else ident
        self.spec = f"world:{ident}"
        model, preprocess, tokenizer = clip.load(folder)
        self._attach(model, preprocess, tokenizer, model.text.proj.out_features)
