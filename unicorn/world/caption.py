"""Varied captions from a scene graph: several templates and orders, in short and dense styles.

Captions are exact (they only state what the scene graph holds), so they serve as real seeds for the
text stages and as ground truth for world-CLIP training.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .scene import Obj, SceneGraph

STYLES = ("short", "dense")
NUMBER_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
# "plain" is said, not left out: short captions leave out texture for every texture, so a detailed phrase without a
# texture word would mean "any texture" in training and "plain" at test (world-CLIP then put plain objects' text
# among the dotted ones: 0.27 of plain objects recovered from text where images give 0.93)
TEXTURE_WORDS = {"plain": "plain", "striped": "striped", "dotted": "dotted", "checked": "checkered"}
RELATION_WORDS = {"left of": "to the left of", "right of": "to the right of"}
OPENERS = ("", "A picture of ", "An image showing ", "There is ", "This scene has ")


def noun_phrase(obj: Obj, rng: np.random.Generator, *, article: bool = True, detail: bool = True) -> str:
    """'a small red striped star'; without `detail`, half the time just 'a red star'."""
    words = [obj.size, obj.colour]
    texture = TEXTURE_WORDS[obj.texture]
    if detail and texture:
        words.append(texture)
    if not detail and rng.random() < 0.5:
        words = [obj.colour]
    phrase = " ".join(words + [obj.shape])
    if article:
        phrase = ("an " if phrase[0] in "aeiou" else "a ") + phrase
    return phrase


def where(obj: Obj) -> str:
    """Coarse location of an object in words."""
    v = "top" if obj.y < 0.36 else "bottom" if obj.y > 0.64 else "middle"
    h = "left" if obj.x < 0.36 else "right" if obj.x > 0.64 else "centre"
    if v == "middle" and h == "centre":
        return "in the centre"
    if v == "middle":
        return f"on the {h}"
    return f"at the {v} {h}" if h != "centre" else f"at the {v}"


def caption(scene: SceneGraph, rng: np.random.Generator, style: str = "short") -> str:
    """One caption of `scene` in `style` ('short' or 'dense'), varied by `rng`."""
    if style not in STYLES:
        raise InputError(f"unknown caption style {style!r}; choose one of {', '.join(STYLES)}")
    objects = list(scene.objects)
    order = rng.permutation(len(objects))
    if style == "short":
        phrases = [noun_phrase(objects[k], rng, detail=rng.random() < 0.5) for k in order]
        body = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
        opener = OPENERS[int(rng.integers(len(OPENERS)))]
        text = opener + body
        return text[0].upper() + text[1:] + "."
    sentences = [_count_sentence(objects)]
    for k in order:
        sentences.append(f"{noun_phrase(objects[k], rng).capitalize()} is {where(objects[k])}.")
    for r in rng.permutation(len(scene.relations))[:2]:  # up to two relations
        i, rel, j = scene.relations[int(r)]
        a, b = noun_phrase(objects[i], rng, article=False), noun_phrase(objects[j], rng, article=False)
        sentences.append(f"The {a} is {RELATION_WORDS.get(rel, rel)} the {b}.")
    return " ".join(sentences)


def _count_sentence(objects: list[Obj]) -> str:
    n = len(objects)
    noun = "shape" if n == 1 else "shapes"
    return f"{'There is' if n == 1 else 'There are'} {NUMBER_WORDS.get(n, str(n))} {noun} on a grey background."


def captions(
    scenes: list[SceneGraph], *, seed: int = 0, per_scene: int = 1, style: str | None = None
) -> list[list[str]]:
    """`per_scene` captions for each scene; styles alternate when `style` is None. Seeded per scene."""
    out = []
    for k, scene in enumerate(scenes):
        rng = np.random.default_rng([seed, k, 1])
        out.append([caption(scene, rng, style or STYLES[m % 2]) for m in range(per_scene)])
    return out
