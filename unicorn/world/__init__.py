"""The procedural world: scene graphs, their images and their captions, all exactly known."""

from .caption import caption, captions
from .render import render
from .scene import COLOURS, RELATIONS, SHAPES, SIZES, TEXTURES, Obj, SceneGraph, WorldConfig, sample_scenes

__all__ = [
    "COLOURS",
    "RELATIONS",
    "SHAPES",
    "SIZES",
    "TEXTURES",
    "Obj",
    "SceneGraph",
    "WorldConfig",
    "caption",
    "captions",
    "render",
    "sample_scenes",
]
