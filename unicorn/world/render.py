"""Render a scene graph to an RGB image with PIL: the scene graph is the code the image comes from."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from .scene import COLOURS, SIZES, Obj, SceneGraph

BACKGROUND = (128, 128, 128)  # mid grey, so white and black objects both stand out
SUPERSAMPLE = 4  # draw large, then downsample, for anti-aliased edges


def render(scene: SceneGraph, size: int = 64) -> Image.Image:
    """Draw `scene` as a size x size RGB image."""
    big = size * SUPERSAMPLE
    canvas = Image.new("RGB", (big, big), BACKGROUND)
    for obj in scene.objects:
        mask = Image.new("L", (big, big), 0)
        draw = ImageDraw.Draw(mask)
        if obj.shape == "circle":
            draw.ellipse(_box(obj, big), fill=255)
        else:
            draw.polygon(_outline(obj, big), fill=255)
        canvas.paste(_texture(obj, big), (0, 0), mask)
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def _box(obj: Obj, side: int) -> tuple[float, float, float, float]:
    r = SIZES[obj.size] * side / 2
    cx, cy = obj.x * side, obj.y * side
    return (cx - r, cy - r, cx + r, cy + r)


def _outline(obj: Obj, side: int) -> list[tuple[float, float]]:
    r = SIZES[obj.size] * side / 2
    cx, cy = obj.x * side, obj.y * side
    if obj.shape == "square":
        s = r * 0.9
        return [(cx - s, cy - s), (cx + s, cy - s), (cx + s, cy + s), (cx - s, cy + s)]
    if obj.shape == "triangle":
        return [(cx, cy - r), (cx + r * 0.95, cy + r * 0.8), (cx - r * 0.95, cy + r * 0.8)]
    if obj.shape == "diamond":
        return [(cx, cy - r), (cx + r * 0.75, cy), (cx, cy + r), (cx - r * 0.75, cy)]
    # star: ten points alternating outer and inner radius
    return [
        (
            cx + (r if k % 2 == 0 else r * 0.45) * math.sin(k * math.pi / 5),
            cy - (r if k % 2 == 0 else r * 0.45) * math.cos(k * math.pi / 5),
        )
        for k in range(10)
    ]


def _texture(obj: Obj, side: int) -> Image.Image:
    """A full-canvas layer in the object's colour, patterned by its texture (pasted through its mask)."""
    colour = COLOURS[obj.colour]
    shade = tuple(int(c * 0.45) for c in colour) if sum(colour) > 150 else (200, 200, 200)
    layer = Image.new("RGB", (side, side), colour)
    if obj.texture == "plain":
        return layer
    draw = ImageDraw.Draw(layer)
    step = max(SUPERSAMPLE * 4, side // 12)
    if obj.texture == "striped":
        for k in range(-side, side, step):
            draw.line([(k, 0), (k + side, side)], fill=shade, width=step // 3)
    elif obj.texture == "dotted":
        for x in range(step // 2, side, step):
            for y in range(step // 2, side, step):
                draw.ellipse((x - step / 5, y - step / 5, x + step / 5, y + step / 5), fill=shade)
    elif obj.texture == "checked":
        for x in range(0, side, step):
            for y in range(0, side, step):
                if (x // step + y // step) % 2:
                    draw.rectangle((x, y, x + step - 1, y + step - 1), fill=shade)
    return layer
