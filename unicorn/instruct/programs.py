"""LLM-free question programs over scene graphs, in the manner of ProVision: every answer is exact.

Programs read `Thing`s (a name, attributes and a normalised box), so world scene graphs and COCO-style
instances (category + box) share them. Each program returns a `QA` or None when the scene cannot
support that kind of question without ambiguity.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
MARGIN = 0.05  # boxes closer than this along an axis are neither left nor right of each other
LETTERS = "ABCD"


@dataclass(frozen=True)
class Thing:
    name: str  # a world shape or a COCO category
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 as shares of the image side
    attributes: dict[str, str] = field(default_factory=dict)  # e.g. colour, size, texture

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2)

    @property
    def area(self) -> float:
        return (self.box[2] - self.box[0]) * (self.box[3] - self.box[1])


@dataclass(frozen=True)
class QA:
    question: str
    answer: str
    kind: str


def things_from_scene(scene) -> list[Thing]:
    """World scene graph objects as Things; boxes come from the same sizes the renderer draws."""
    from ..world.scene import SIZES

    out = []
    for o in scene.objects:
        r = SIZES[o.size] / 2
        attrs = {"colour": o.colour, "size": o.size, "texture": o.texture}
        out.append(Thing(o.shape, (o.x - r, o.y - r, o.x + r, o.y + r), attrs))
    return out


def things_from_instances(instances: Sequence[dict]) -> list[Thing]:
    """COCO-style instances (`{"category", "bbox": [x0, y0, x1, y1]}`, normalised) as Things."""
    out = []
    for k, inst in enumerate(instances):
        try:
            box = tuple(float(v) for v in inst["bbox"])
            name = str(inst["category"]).strip()
        except (KeyError, TypeError, ValueError):
            raise InputError(f"instance {k} needs 'category' and a 4-number 'bbox'") from None
        if len(box) != 4 or not (0 <= box[0] <= box[2] <= 1 and 0 <= box[1] <= box[3] <= 1) or not name:
            raise InputError(f"instance {k} has an invalid bbox {inst.get('bbox')} or empty category")
        out.append(Thing(name, box))
    return out


def refer(things: Sequence[Thing], i: int) -> str | None:
    """The shortest description that picks out thing i alone ('the star', 'the red star', ...), or None."""
    t = things[i]
    for keys in ((), ("colour",), ("size", "colour"), ("size", "colour", "texture")):
        if any(k not in t.attributes for k in keys):
            break
        desc = tuple(t.attributes[k] for k in keys) + (t.name,)
        matches = [u for u in things if tuple(u.attributes.get(k) for k in keys) + (u.name,) == desc]
        if len(matches) == 1:
            return "the " + " ".join(desc)
    return None


def _plural(name: str) -> str:
    return name + ("es" if name.endswith(("s", "sh", "ch", "x")) else "s")


def existence(things, rng, vocab) -> QA | None:
    """Is there a <colour> <name>? Half the time about something absent."""
    t = things[int(rng.integers(len(things)))]
    if rng.random() < 0.5:
        keys = [k for k in ("colour",) if k in t.attributes]
        desc = {k: t.attributes[k] for k in keys} | {"name": t.name}
    else:
        desc = {"name": str(rng.choice(vocab["name"]))}
        if "colour" in vocab and t.attributes:
            desc["colour"] = str(rng.choice(vocab["colour"]))
    present = any(
        u.name == desc["name"] and all(u.attributes.get(k) == v for k, v in desc.items() if k != "name") for u in things
    )
    phrase = " ".join([desc[k] for k in ("colour",) if k in desc] + [desc["name"]])
    article = "an" if phrase[0] in "aeiou" else "a"
    return QA(f"Is there {article} {phrase} in the image?", "yes" if present else "no", "existence")


def counting(things, rng, vocab) -> QA | None:
    """How many <name>s / things are there?"""
    if rng.random() < 0.5:
        noun = "shapes" if things[0].attributes else "objects"
        return QA(f"How many {noun} are there?", NUMBER_WORDS[min(len(things), 10)], "counting")
    name = things[int(rng.integers(len(things)))].name
    n = sum(u.name == name for u in things)
    return QA(f"How many {_plural(name)} are there?", NUMBER_WORDS[min(n, 10)], "counting")


def attribute(things, rng, vocab) -> QA | None:
    """What <attribute> is <the thing>?"""
    i = int(rng.integers(len(things)))
    ref = refer(things, i)
    keys = [k for k in ("colour", "size", "texture") if k in things[i].attributes]
    if ref is None or not keys:
        return None
    key = str(rng.choice(keys))
    # describe the thing without the attribute asked about, so the question never gives the answer away
    ref = refer([Thing(u.name, u.box, {k: v for k, v in u.attributes.items() if k != key}) for u in things], i)
    if ref is None:
        return None
    word = {"colour": "colour", "size": "size", "texture": "pattern"}[key]
    return QA(f"What {word} is {ref}?", things[i].attributes[key], "attribute")


def _pair(things, rng) -> tuple[int, int, str, str] | None:
    """Two distinct things, drawn at random, with the phrases that pick each out; None if either is ambiguous."""
    if len(things) < 2:
        return None
    i, j = (int(v) for v in rng.choice(len(things), size=2, replace=False))
    a, b = refer(things, i), refer(things, j)
    return None if a is None or b is None else (i, j, a, b)


def relation(things, rng, vocab) -> QA | None:
    """Is <a> to the left of / above <b>? Only asked where the geometry is unambiguous."""
    pair = _pair(things, rng)
    if pair is None:
        return None
    i, j, a, b = pair
    axis = int(rng.integers(2))
    word = ("to the left of", "above")[axis]
    d = things[j].centre[axis] - things[i].centre[axis]
    if abs(d) < MARGIN:
        return None
    return QA(f"Is {a} {word} {b}?", "yes" if d > 0 else "no", "relation")


EXTREMES = {
    "left-most": lambda t: t.centre[0],
    "right-most": lambda t: -t.centre[0],
    "top-most": lambda t: t.centre[1],
    "bottom-most": lambda t: -t.centre[1],
    "largest": lambda t: -t.area,
    "smallest": lambda t: t.area,
}


def extreme(things, rng, vocab) -> QA | None:
    """What is the left-most / largest ... thing? Asked only when one thing clearly wins."""
    if len(things) < 2:
        return None
    which = str(rng.choice(list(EXTREMES)))
    keyed = sorted(things, key=EXTREMES[which])
    k0, k1 = EXTREMES[which](keyed[0]), EXTREMES[which](keyed[1])
    if abs(k1 - k0) < (0.01 if which in ("largest", "smallest") else MARGIN):
        return None
    noun = "shape" if things[0].attributes else "object"
    return QA(f"What is the {which} {noun}?", keyed[0].name, "extreme")


def comparison(things, rng, vocab) -> QA | None:
    """Is <a> bigger than <b>? / Are <a> and <b> the same colour?"""
    pair = _pair(things, rng)
    if pair is None:
        return None
    i, j, a, b = pair
    if "colour" in things[i].attributes and rng.random() < 0.5:
        same = things[i].attributes["colour"] == things[j].attributes["colour"]
        return QA(f"Are {a} and {b} the same colour?", "yes" if same else "no", "comparison")
    ratio = things[i].area / max(things[j].area, 1e-9)
    if 0.8 < ratio < 1.25:
        return None
    return QA(f"Is {a} bigger than {b}?", "yes" if ratio > 1 else "no", "comparison")


def multiple_choice(things, rng, vocab) -> QA | None:
    """An attribute or extreme question with four shuffled options, answered by letter."""
    base = attribute(things, rng, vocab) if things[0].attributes and rng.random() < 0.5 else extreme(things, rng, vocab)
    if base is None:
        return None
    pool = next((v for v in vocab.values() if base.answer in v), None)
    if pool is None or len(pool) < 4:
        return None
    distractors = [str(v) for v in rng.permutation([v for v in pool if v != base.answer])[:3]]
    options = [str(v) for v in rng.permutation([base.answer, *distractors])]
    listed = " ".join(f"{LETTERS[k]}. {o}" for k, o in enumerate(options))
    letter = LETTERS[options.index(base.answer)]
    return QA(f"{base.question} Options: {listed}. Answer with the letter.", letter, "multiple_choice")


PROGRAMS: dict[str, Callable] = {
    "existence": existence,
    "counting": counting,
    "attribute": attribute,
    "relation": relation,
    "extreme": extreme,
    "comparison": comparison,
    "multiple_choice": multiple_choice,
}


def world_vocab() -> dict[str, tuple[str, ...]]:
    """Answer vocabularies of the procedural world, used for absent things and distractor options."""
    from ..world.scene import COLOURS, SHAPES, SIZES, TEXTURES

    return {"name": SHAPES, "colour": tuple(COLOURS), "size": tuple(SIZES), "texture": TEXTURES}


def generate(
    things: Sequence[Thing],
    rng: np.random.Generator,
    *,
    vocab: dict[str, Sequence[str]],
    kinds: Sequence[str] | None = None,
    per_scene: int = 4,
    tries: int = 20,
) -> list[QA]:
    """Up to `per_scene` distinct questions about `things`, kinds drawn in turn from `kinds` (default: all)."""
    kinds = list(kinds or PROGRAMS)
    unknown = [k for k in kinds if k not in PROGRAMS]
    if unknown:
        raise InputError(f"unknown question kind {unknown[0]!r}; known: {', '.join(PROGRAMS)}")
    if not things:
        return []
    out: dict[str, QA] = {}
    for _ in range(per_scene * tries):
        if len(out) >= per_scene:
            break
        qa = PROGRAMS[kinds[int(rng.integers(len(kinds)))]](list(things), rng, vocab)
        if qa is not None and qa.question not in out:
            out[qa.question] = qa
    return list(out.values())


def balance(qas: Sequence[QA], rng: np.random.Generator, *, strength: float = 1.0) -> list[QA]:
    """Inverse-frequency balancing: within each kind, keep a QA with probability (rarest / count) ** strength,
    where count is how often its answer occurs and rarest the count of the kind's rarest answer.

    Removes the answer priors (say 'no' to every existence question) that let a model skip the image;
    strength 1 levels the answers fully, smaller values keep more rows.
    """
    if not 0 <= strength <= 1:
        raise InputError(f"balance strength must be in [0, 1], got {strength}")
    counts = Counter((q.kind, q.answer) for q in qas)
    rarest = {}
    for (kind, _), n in counts.items():
        rarest[kind] = min(rarest.get(kind, n), n)
    return [q for q in qas if rng.random() < (rarest[q.kind] / counts[(q.kind, q.answer)]) ** strength]
