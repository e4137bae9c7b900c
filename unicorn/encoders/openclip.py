"""open_clip models: `openclip:ARCH/PRETRAINED`, `openclip:ARCH@/path/weights`, `openclip:ARCH/random`.

ARCH is a registered open_clip architecture or a path to a model-config JSON file.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import InputError
from .base import Encoder, load_error


class OpenClipEncoder(Encoder):
    def __init__(self, ident: str, *, device: str | None = None) -> None:
        import open_clip

        super().__init__(device=device)
        self.spec = f"openclip:{ident}"
        if "@" in ident:
            arch, weights = ident.split("@", 1)
            if not Path(weights).is_file():
                raise InputError(f"{self.spec}: checkpoint {weights} not found")
        else:
            arch, _, weights = ident.rpartition("/")  # tags hold no "/"; config paths may
            if not weights:
                raise InputError(
                    f"{self.spec}: name the weights as ARCH/PRETRAINED, ARCH@/path/to/weights or ARCH/random"
                )
        arch = self._register(arch)
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(
                arch, pretrained=None if weights == "random" else weights, device=self.device
            )
        except Exception as e:  # open_clip raises RuntimeError, HF hub errors, OSError...
            raise load_error(self.spec, e) from None
        self._attach(model, preprocess, open_clip.get_tokenizer(arch), open_clip.get_model_config(arch)["embed_dim"])

    def _attach(self, model, preprocess, tokenizer, dim: int) -> None:
        self.model = model.to(self.device, self.dtype).eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.dim = int(dim)

    @staticmethod
    def _register(arch: str) -> str:
        import open_clip

        path = Path(arch)
        if path.suffix == ".json":
            if not path.is_file():
                raise InputError(f"open_clip model config {arch} not found")
            open_clip.add_model_config(path)
            return path.stem
        if arch not in open_clip.list_models():
            raise InputError(
                f"unknown open_clip architecture '{arch}'; see open_clip.list_models() or give a config .json"
            )
        return arch

    def _text_batch(self, texts):
        tokens = self.tokenizer(texts).to(self.device)
        return self.model.encode_text(tokens)

    def _image_batch(self, images):
        pixels = torch.stack([self.preprocess(im.convert("RGB")) for im in images]).to(self.device, self.dtype)
        return self.model.encode_image(pixels)
