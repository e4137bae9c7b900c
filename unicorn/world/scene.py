"""Scene graphs of the procedural world: objects with exact attributes and the relations between them.

The scene graph is the code an image is rendered from (as in CoSyn) and the symbolic form that
ProVision-style question generators read, so every caption and answer about it is exactly known.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import InputError

SHAPES = ("circle", "square", "triangle", "diamond", "star")
COLOURS = {
    "red": (220, 45, 45),
    "green": (40, 170, 70),
    "blue": (45, 90, 220),
    "yellow": (235, 205, 40),
    "purple": (140, 60, 190),
    "orange": (240, 140, 30),
    "white": (245, 245, 245),
    "black": (25, 25, 25),
}
SIZES = {"small": 0.16, "medium": 0.24, "large": 0.34}  # diameter as a share of the image side
TEXTURES = ("plain", "striped", "dotted", "checked")
RELATIONS = ("left of", "right of", "above", "below", "near", "bigger than", "same colour as")


VOCABULARY = {"shape": SHAPES, "colour": tuple(COLOURS), "size": tuple(SIZES), "texture": TEXTURES}


def check_known(name: str, values, source: str) -> None:
    """Refuse the first of `values` that is not in the world's vocabulary for `name`, listing the known ones."""
    known = VOCABULARY[name]
    unknown = [v for v in values if v not in known]
    if unknown:
        raise InputError(f"unknown {name} {unknown[0]!r} in {source}; known: {', '.join(known)}")


@dataclass(frozen=True)
class WorldConfig:
    """What a world may contain. Every name must come from the known vocabularies above."""

    shapes: tuple[str, ...] = SHAPES
    colours: tuple[str, ...] = tuple(COLOURS)
    sizes: tuple[str, ...] = tuple(SIZES)
    textures: tuple[str, ...] = TEXTURES
    min_objects: int = 1
    max_objects: int = 4
    image_size: int = 64

    def __post_init__(self) -> None:
        for name, values in (
            ("shape", self.shapes),
            ("colour", self.colours),
            ("size", self.sizes),
            ("texture", self.textures),
        ):
            if not values:
                raise InputError(f"world config needs at least one {name}")
            check_known(name, values, "world config")
        if not 1 <= self.min_objects <= self.max_objects <= 6:
            raise InputError(
                "objects per scene must satisfy 1 <= min <= max <= 6, "
                f"got min {self.min_objects}, max {self.max_objects}"
            )
        if not 32 <= self.image_size <= 1024:
            raise InputError(f"image_size must be in [32, 1024], got {self.image_size}")


@dataclass(frozen=True)
class Obj:
    shape: str
    colour: str
    size: str
    texture: str
    x: float  # centre, as a share of the image width (0 = left)
    y: float  # centre, as a share of the image height (0 = top)


@dataclass(frozen=True)
class SceneGraph:
    objects: tuple[Obj, ...]
    relations: tuple[tuple[int, str, int], ...] = field(default=())

    def to_dict(self) -> dict:
        return {"objects": [asdict(o) for o in self.objects], "relations": [list(r) for r in self.relations]}

    @classmethod
    def from_dict(cls, data: dict) -> SceneGraph:
        """Rebuild a scene from `to_dict` output, validating every name and coordinate."""
        try:
            objects = tuple(Obj(**o) for o in data["objects"])
        except (KeyError, TypeError) as e:
            raise InputError(f"malformed scene graph: {e}") from None
        if not objects:
            raise InputError("a scene graph needs at least one object")
        for o in objects:
            for name, value in (("shape", o.shape), ("colour", o.colour), ("size", o.size), ("texture", o.texture)):
                check_known(name, (value,), "scene graph")
            if not (0 <= o.x <= 1 and 0 <= o.y <= 1):
                raise InputError(f"object position ({o.x}, {o.y}) is outside [0, 1]")
        return cls(objects, relations_of(objects))


def relations_of(objects: tuple[Obj, ...]) -> tuple[tuple[int, str, int], ...]:
    """Every relation that holds between ordered pairs of objects, derived from geometry and attributes."""
    rels = []
    for i, a in enumerate(objects):
        for j, b in enumerate(objects):
            if i == j:
                continue
            if a.x < b.x - 0.12:
                rels.append((i, "left of", j))
            if a.x > b.x + 0.12:
                rels.append((i, "right of", j))
            if a.y < b.y - 0.12:
                rels.append((i, "above", j))
            if a.y > b.y + 0.12:
                rels.append((i, "below", j))
            if math.dist((a.x, a.y), (b.x, b.y)) < 0.35:
                rels.append((i, "near", j))
            if SIZES[a.size] > SIZES[b.size]:
                rels.append((i, "bigger than", j))
            if i < j and a.colour == b.colour:
                rels.append((i, "same colour as", j))
    return tuple(rels)


def sample_scene(rng: np.random.Generator, config: WorldConfig) -> SceneGraph:
    """Draw one scene: a number of objects, their attributes, and non-overlapping positions."""
    count = int(rng.integers(config.min_objects, config.max_objects + 1))
    objects: list[Obj] = []
    while len(objects) < count:
        size = str(rng.choice(config.sizes))
        radius = SIZES[size] / 2
        for _ in range(100):  # rejection-sample a free spot
            x, y = rng.uniform(radius + 0.02, 1 - radius - 0.02, size=2)
            if all(math.dist((x, y), (o.x, o.y)) > radius + SIZES[o.size] / 2 + 0.02 for o in objects):
                break
        else:
            if objects:  # crowded: keep what fits
                break
        objects.append(
            Obj(
                str(rng.choice(config.shapes)),
                str(rng.choice(config.colours)),
                size,
                str(rng.choice(config.textures)),
                round(float(x), 4),
                round(float(y), 4),
            )
        )
    return SceneGraph(tuple(objects), relations_of(tuple(objects)))


def sample_scenes(n: int, *, seed: int = 0, config: WorldConfig | None = None, start: int = 0) -> list[SceneGraph]:
    """Scenes `start .. start + n` of the world under `seed`; scene k is the same whatever the batch."""
    if n < 0:
        raise InputError(f"number of scenes must be >= 0, got {n}")
    config = config or WorldConfig()
    return [sample_scene(np.random.default_rng([seed, k]), config) for k in range(start, start + n)]
