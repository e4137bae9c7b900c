"""Modality transfer: map CLIP text embeddings into the image-embedding space, and measure the gap."""

from .base import Projector
from .errors import InputError
from .factory import create_projector, list_projectors, load_projector, register_projector, unregister_projector

__all__ = [
    "InputError",
    "Projector",
    "create_projector",
    "list_projectors",
    "load_projector",
    "register_projector",
    "unregister_projector",
]
