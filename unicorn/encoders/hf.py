"""Hugging Face dual encoders (CLIP, SigLIP, ...): `hf:NAME_OR_DIR`."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError
from .base import Encoder, load_error


class HFClipEncoder(Encoder):
    def __init__(self, ident: str, *, device: str | None = None) -> None:
        from transformers import AutoModel, AutoProcessor

        super().__init__(device=device)
        self.spec = f"hf:{ident}"
        local = Path(ident).is_dir()
        try:
            self.model = (
                AutoModel.from_pretrained(ident, local_files_only=local, dtype=self.dtype).to(self.device).eval()
            )
            self.processor = AutoProcessor.from_pretrained(ident, local_files_only=local)
        except Exception as e:
            raise load_error(self.spec, e) from None
        if not hasattr(self.model, "get_text_features"):
            raise InputError(f"{self.spec} is a {type(self.model).__name__}, not a text-image dual encoder")
        self.dim = int(
            self.model.config.projection_dim
            if hasattr(self.model.config, "projection_dim")
            else self.model.config.text_config.hidden_size
        )

    def _text_batch(self, texts):
        # SigLIP was trained on max_length padding; CLIP pads to the longest in the batch.
        padding = "max_length" if "siglip" in type(self.model).__name__.lower() else True
        inputs = self.processor(text=texts, return_tensors="pt", padding=padding, truncation=True).to(self.device)
        return _features(self.model.get_text_features(**inputs))

    def _image_batch(self, images):
        inputs = self.processor(images=[im.convert("RGB") for im in images], return_tensors="pt").to(self.device)
        return _features(self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.dtype)))


def _features(out) -> torch.Tensor:
    """transformers 5 may wrap projected features in an output object."""
    if isinstance(out, torch.Tensor):
        return out
    for key in ("text_embeds", "image_embeds", "pooler_output"):
        value = getattr(out, key, None)
        if value is not None:
            return value
    raise InputError(f"unexpected output type {type(out).__name__} from the Hugging Face model")
