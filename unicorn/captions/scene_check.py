"""Does a caption say what its scene holds? Its mentions of a closed vocabulary, checked against the scene's truth.

The synthetic image embedding is made from the caption, and exact QA is written from the scene graph: a caption
that names an object the scene lacks (a variant of "four shapes" that tells of "a star ... of brilliant light" or "a
purple square on top") pairs an embedding with answers about something it never showed. Two checks:

- World scenes (exact): the caption's noun phrases over the world's vocabulary ("two large blue dotted squares",
  "shapes", size/texture synonyms) must each match objects of the scene with those attributes, in that number where
  a number is given; a colour or texture word outside any phrase ("white marble") must be one some object has; and
  "A left of / right of / above / below B" must hold for some pair of matching objects (by position, no margin).
- COCO-style instances (an approximation): a COCO category noun in the caption (singular or plural, multi-word
  names included) must be among the image's instance categories. Synonyms ("man" for person) are not resolved, so
  this catches wrong objects named by their category only.

`check_caption` returns the wrong mentions (empty: grounded), the coverage, the share of the scene's objects (or
categories) the caption mentions, and the facts: how many distinct true (attribute, value) pairs (or categories) it
states. They feed the captions step's `scene` and `facts` filters and the run report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..world.scene import COLOURS, SHAPES

SIZE_WORDS = {"small": "small", "tiny": "small", "little": "small", "medium": "medium", "medium-sized": "medium",
              "large": "large", "big": "large", "huge": "large", "giant": "large"}  # fmt: skip
TEXTURE_WORDS = {"plain": "plain", "striped": "striped", "stripy": "striped", "dotted": "dotted", "spotted": "dotted",
                 "polka-dot": "dotted", "polka-dotted": "dotted", "checked": "checked", "checkered": "checked",
                 "chequered": "checked"}  # fmt: skip
SHAPE_WORDS = {**{s: s for s in SHAPES}, **{s + "s": s for s in SHAPES}}
ANY_SHAPE = {"shape", "shapes", "object", "objects", "item", "items", "figure", "figures"}
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "single": 1,
           "pair": 2, "couple": 2} | {str(n): n for n in range(1, 10)}  # fmt: skip
RELATIONS = {"left of": "left", "right of": "right", "above": "above", "below": "below", "beneath": "below",
             "under": "below", "underneath": "below", "on top of": "above"}  # fmt: skip
ATTRIBUTES = ("shape", "colour", "size", "texture")  # what a world object has (and a Mention may state)
TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*|\d+|[.;!?]")

# The 80 COCO detection categories (the names COCO's instance annotations use).
COCO_CATEGORIES = tuple(c.replace("_", " ") for c in (
    "person bicycle car motorcycle airplane bus train truck boat traffic_light fire_hydrant stop_sign parking_meter "
    "bench bird cat dog horse sheep cow elephant bear zebra giraffe backpack umbrella handbag tie suitcase frisbee "
    "skis snowboard sports_ball kite baseball_bat baseball_glove skateboard surfboard tennis_racket bottle wine_glass "
    "cup fork knife spoon bowl banana apple sandwich orange broccoli carrot hot_dog pizza donut cake chair couch "
    "potted_plant bed dining_table toilet tv laptop mouse remote keyboard cell_phone microwave oven toaster sink "
    "refrigerator book clock vase scissors teddy_bear hair_drier toothbrush"
).split())  # fmt: skip


@dataclass(frozen=True)
class Mention:
    """A noun phrase over the world's vocabulary: `shape` None means any shape ("four shapes")."""

    text: str
    shape: str | None
    colour: str | None = None
    size: str | None = None
    texture: str | None = None
    count: int | None = None
    sentence: int = 0

    def matches(self, obj: dict) -> bool:
        return all(
            want is None or obj[key] == want
            for key, want in (("shape", self.shape), ("colour", self.colour), ("size", self.size),
                              ("texture", self.texture))
        )  # fmt: skip


@dataclass
class SceneCheck:
    wrong: list[str] = field(default_factory=list)  # what the caption says that the scene contradicts
    mentions: int = 0
    coverage: float = 0.0  # share of the scene's objects (or categories) that some mention names
    facts: int = 0  # distinct true facts stated: (attribute, value) pairs some object has (world), or categories

    @property
    def grounded(self) -> bool:
        return not self.wrong


def parse(caption: str) -> tuple[list[Mention], list[tuple[str, str, int]], list[tuple[int, str, int]]]:
    """(noun phrases, loose attribute words (kind, value, sentence), relations (mention i, relation, mention j))."""
    tokens = TOKEN.findall(caption.lower())
    mentions: list[Mention] = []
    loose: list[tuple[str, str, int]] = []
    pending: dict = {}
    words: list[str] = []
    sentence = 0
    relations = []
    last_relation: tuple[int, str] | None = None  # (mention index before it, relation)
    k = 0
    while k < len(tokens):
        t = tokens[k]
        if t in ".;!?":
            loose += [(kind, value, sentence) for kind, value in pending.items() if kind in ("colour", "texture")]
            pending, words, last_relation, sentence = {}, [], None, sentence + 1
            k += 1
            continue
        two, three = " ".join(tokens[k : k + 2]), " ".join(tokens[k : k + 3])
        relation = next((RELATIONS[p] for p in (three, two, t) if p in RELATIONS), None)
        if relation and mentions and mentions[-1].sentence == sentence:
            last_relation = (len(mentions) - 1, relation)
            k += len(next(p for p in (three, two, t) if p in RELATIONS).split())
            continue
        if t in COLOURS:
            pending["colour"] = t
        elif t in SIZE_WORDS:
            pending["size"] = SIZE_WORDS[t]
        elif t in TEXTURE_WORDS:
            pending["texture"] = TEXTURE_WORDS[t]
        elif t in NUMBERS:
            pending["count"] = NUMBERS[t]
        elif t in SHAPE_WORDS or t in ANY_SHAPE:
            shape = SHAPE_WORDS.get(t)
            mention = Mention(" ".join(words + [t]), shape, pending.get("colour"), pending.get("size"),
                              pending.get("texture"), pending.get("count"), sentence)  # fmt: skip
            if shape is not None or mention.count is not None or mention.colour or mention.texture:
                mentions.append(mention)
                if last_relation is not None:
                    relations.append((last_relation[0], last_relation[1], len(mentions) - 1))
                    last_relation = None
            pending, words = {}, []
            k += 1
            continue
        elif t not in ("a", "an", "the", "and", "with", "of", "is", "are", "some", "in"):
            # any other word ends a phrase: a colour or texture before it describes something else ("white marble")
            loose += [(kind, value, sentence) for kind, value in pending.items() if kind in ("colour", "texture")]
            pending, words = {}, []
            k += 1
            continue
        words.append(t)
        k += 1
    loose += [(kind, value, sentence) for kind, value in pending.items() if kind in ("colour", "texture")]
    return mentions, loose, relations


def _holds(a: dict, relation: str, b: dict) -> bool:
    return {"left": a["x"] < b["x"], "right": a["x"] > b["x"], "above": a["y"] < b["y"], "below": a["y"] > b["y"]}[
        relation
    ]


def check_world(caption: str, scene: dict) -> SceneCheck:
    objects = scene["objects"]
    mentions, loose, relations = parse(caption)
    out = SceneCheck(mentions=len(mentions) + len(loose))
    covered: set[int] = set()
    for m in mentions:
        hits = [i for i, o in enumerate(objects) if m.matches(o)]
        if m.count is not None and len(hits) != m.count:
            out.wrong.append(f"'{m.text}': the scene has {len(hits)}")
        elif not hits:
            out.wrong.append(f"'{m.text}': no such object")
        if m.shape is not None:
            covered.update(hits)
    for kind, value, _ in loose:
        if not any(o[kind] == value for o in objects):
            out.wrong.append(f"'{value}': no {value} object")
    for i, relation, j in relations:
        a = [o for o in objects if mentions[i].matches(o)]
        b = [o for o in objects if mentions[j].matches(o)]
        if a and b and not any(x is not y and _holds(x, relation, y) for x in a for y in b):
            out.wrong.append(f"'{mentions[i].text} {relation} {mentions[j].text}': not so in the scene")
    out.coverage = len(covered) / len(objects)
    out.facts = len(_claims(mentions, loose) & {(a, o[a]) for o in objects for a in ATTRIBUTES})
    return out


def _claims(mentions: list[Mention], loose: list[tuple[str, str, int]]) -> set[tuple[str, str]]:
    return {(a, getattr(m, a)) for m in mentions for a in ATTRIBUTES if getattr(m, a) is not None} | {
        (kind, value) for kind, value, _ in loose
    }


def claims(caption: str) -> set[tuple[str, str]]:
    """The distinct (attribute, value) pairs a caption states over the world's vocabulary, true or not: what
    `SceneCheck.facts` counts the true ones of."""
    mentions, loose, _ = parse(caption)
    return _claims(mentions, loose)


def _plural(word: str) -> str:
    if word.endswith("y") and word[-2] not in "aeiou":
        return word[:-1] + "ies"
    return word + ("es" if word.endswith(("s", "sh", "ch")) else "s")


def check_instances(caption: str, categories: set[str]) -> SceneCheck:
    """COCO-style: category nouns in the caption against the image's instance categories (an approximation)."""
    text = " " + " ".join(TOKEN.findall(caption.lower())) + " "
    named = {c for c in COCO_CATEGORIES if f" {c} " in text or f" {_plural(c)} " in text}
    out = SceneCheck(mentions=len(named))
    out.wrong = [f"'{c}': not among the image's objects" for c in sorted(named - categories)]
    out.coverage = len(named & categories) / len(categories) if categories else 0.0
    out.facts = len(named & categories)
    return out


def check_caption(caption: str, scene) -> SceneCheck | None:
    """The check for a row's context (`RowContext`, or its dict): world objects, the categories of boxes, or None
    when the row has none."""
    from ..context import RowContext

    context = scene if isinstance(scene, RowContext) else RowContext.decode(scene)
    if context.is_world:
        return check_world(caption, context.data)
    if context.is_boxes:
        return check_instances(caption, context.categories)
    return None
