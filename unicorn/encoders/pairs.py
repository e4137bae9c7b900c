"""Image-caption pairs from a JSONL file, embedded with one encoder: what `unicorn gap fit --pairs` fits on.

Each line is `{"image": PATH, "caption": TEXT}` (`text` is accepted for `caption`); a relative path is read from
the pairs file's folder. Every line is checked (the image exists, the caption is a non-empty string) before the
encoder loads, so a bad line costs a second, not a model load, and is named with its line number."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import InputError


def read_pairs(path: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """(image paths, captions) of a pairs file, every line checked."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"pairs file {path} not found")
    images, captions = [], []
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise InputError(f"{path} line {n} is not a JSON line") from None
            if not isinstance(row, dict):
                raise InputError(f"{path} line {n} is not a JSON object")
            caption = row.get("caption", row.get("text"))
            if not isinstance(caption, str) or not caption.strip():
                raise InputError(f"{path} line {n} has no caption (a non-empty 'caption' string)")
            image = row.get("image")
            if not isinstance(image, str) or not image:
                raise InputError(f"{path} line {n} has no image (an 'image' path)")
            image_path = Path(image) if Path(image).is_absolute() else path.parent / image
            if not image_path.is_file():
                raise InputError(f"{path} line {n}: image {image_path} not found")
            images.append(image_path)
            captions.append(caption)
    if not images:
        raise InputError(f"pairs file {path} holds no pairs")
    return images, captions


def embed_pairs(encoder_spec: str, path: str | os.PathLike, *, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(text, image) embeddings, row-aligned, of the pairs in `path` under the encoder `encoder_spec` (an image
    tower is required: `openclip:ARCH/PRETRAINED`, `world`, ...)."""
    from PIL import Image, UnidentifiedImageError

    from . import create_encoder

    images, captions = read_pairs(path)
    encoder = create_encoder(encoder_spec)
    if not getattr(encoder, "has_image", False):
        raise InputError(f"encoder {encoder_spec} has no image tower; pairs need one (e.g. openclip:ARCH/PRETRAINED)")
    text = encoder.encode_text(captions, batch_size=batch_size)
    chunks = []
    for start in range(0, len(images), batch_size):  # a batch of images open at a time, not the whole set
        batch = []
        for p in images[start : start + batch_size]:
            try:
                with Image.open(p) as im:
                    batch.append(im.convert("RGB"))
            except (UnidentifiedImageError, OSError) as e:
                raise InputError(f"image {p} cannot be read: {e}") from None
        chunks.append(encoder.encode_image(batch, batch_size=batch_size, progress=False))
    return text, np.concatenate(chunks)
