"""World-CLIP, the project's own CLIP of the procedural world: `world` (the shipped checkpoint) or `world:FOLDER`."""

from __future__ import annotations

from pathlib import Path

from ..world import clip
from .base import Encoder
from .openclip import OpenClipEncoder


class WorldClipEncoder(OpenClipEncoder):
    """A world-CLIP checkpoint folder, served through the same adapter as any open_clip model."""

    @classmethod
    def declared_dim(cls, ident: str) -> int | None:
        import json

        folder = clip.DEFAULT_CHECKPOINT if ident == "default" else ident
        try:
            return int(json.loads((Path(folder) / clip.CONFIG_NAME).read_text())["model_cfg"]["embed_dim"])
        except (OSError, ValueError, KeyError, TypeError):
            return None  # the load itself will say what is wrong

    def __init__(self, ident: str, *, device: str | None = None) -> None:
        Encoder.__init__(self, device=device)
        folder = None if ident == "default" else ident
        self.spec = f"world:{ident}"
        model, preprocess, tokenizer = clip.load(folder)
        self._attach(model, preprocess, tokenizer, model.text.proj.out_features)
