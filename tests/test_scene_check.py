"""Captions checked against their scene: planted wrong mentions are caught, exact captions pass, coverage is a share."""

import json
from pathlib import Path

import numpy as np
import pytest

from unicorn.captions.scene_check import check_caption, claims
from unicorn.world.caption import caption
from unicorn.world.scene import sample_scenes

ROOT = Path(__file__).resolve().parents[1]


def obj(shape, colour, size="medium", texture="plain", x=0.5, y=0.5):
    return {"shape": shape, "colour": colour, "size": size, "texture": texture, "x": x, "y": y}


SCENE = {"objects": [obj("star", "green", "medium", x=0.8, y=0.7), obj("triangle", "white", "small", x=0.8, y=0.1),
                     obj("square", "blue", "large", "dotted", x=0.5, y=0.4),
                     obj("star", "white", "small", "dotted", x=0.5, y=0.9)]}  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "Four shapes: a medium green star, a large blue dotted square, a small white star and a white triangle.",
        "Two stars, one green and one white, sit beside a blue square with dots.",
        "The white triangle is above the blue square.",
        "A green star is to the right of the big blue square.",
    ],
)
def test_captions_that_agree_with_the_scene_pass(text):
    assert check_caption(text, SCENE).wrong == []


@pytest.mark.parametrize(
    "text, wrong",
    [
        ("This square is small, with a purple square on top.", "purple square"),  # an object the scene lacks
        ("A red circle glows in the corner.", "red circle"),
        ("Three stars shine on the grey background.", "three stars"),  # the scene has two
        ("Five shapes are scattered around.", "five shapes"),
        ("A striped triangle points upward.", "striped triangle"),  # the triangle is plain
        ("The image is set on a large, dark, orange background.", "orange"),  # a colour no object has
        ("The green star is to the left of the blue square.", "left"),  # it is to the right
        ("A large white star sits at the bottom.", "large white star"),  # the white star is small
    ],
)
def test_a_planted_wrong_mention_is_caught(text, wrong):
    found = check_caption(text, SCENE).wrong
    assert found and any(wrong in w for w in found), found


def test_coverage_is_the_share_of_objects_named():
    assert check_caption("A blue square.", SCENE).coverage == 0.25
    assert check_caption("Two stars and a blue square.", SCENE).coverage == 0.75
    assert check_caption("A nice picture.", SCENE).coverage == 0.0


def test_the_worlds_own_captions_are_always_grounded():
    """Oracle: the world's caption writer states only the truth, in both styles, over 200 random scenes."""
    rng = np.random.default_rng(0)
    for scene in sample_scenes(200, seed=3):
        data = scene.to_dict()
        for style in ("short", "dense"):
            text = caption(scene, rng, style)
            check = check_caption(text, data)
            assert check.wrong == [], (text, check.wrong)
            assert style == "short" or check.coverage == 1.0  # a dense caption names every object


def test_coco_instances_by_category_noun():
    instances = {"instances": [{"category": "person"}, {"category": "bicycle"}, {"category": "car"}]}
    assert check_caption("A person rides a bicycle past two cars.", instances).wrong == []
    found = check_caption("A person rides a bicycle past a traffic light and a dog.", instances).wrong
    assert any("traffic light" in w for w in found) and any("dog" in w for w in found)
    assert check_caption("Anything", None) is None


def test_the_shipped_world_seeds_are_grounded():
    rows = [json.loads(line) for line in (ROOT / "seeds" / "world.jsonl").read_text().splitlines()]
    assert all(check_caption(r["caption"], r["scene"]).wrong == [] for r in rows)


def test_facts_count_the_true_attribute_values_a_caption_states():
    """Counted by hand over SCENE: shapes star, triangle, square; colours green, white, blue; sizes medium, small,
    large; textures plain, dotted. A wrong or repeated value adds nothing."""
    assert check_caption("A medium green star.", SCENE).facts == 3  # star, green, medium
    assert check_caption("A medium green star and a small green star.", SCENE).facts == 4  # + small
    assert check_caption("A purple circle.", SCENE).facts == 0
    assert claims("A purple circle.") == {("colour", "purple"), ("shape", "circle")}  # stated, true or not
    dense = "A medium green star, a large blue dotted square, a small white star and a white plain triangle."
    assert check_caption(dense, SCENE).facts == 11


def test_a_variant_thinner_than_its_seed_is_rejected_by_the_facts_filter():
    from unicorn.captions.filters import FilterConfig, apply_filters

    batch = {"caption": ["A medium green star beside a large blue dotted square, seen in daylight.",
                         "A medium green star beside a large blue dotted square and small white stars."],
             "seed": ["A medium green star and a large blue dotted square."] * 2, "error": [None, None]}  # fmt: skip
    seed = check_caption(batch["seed"][0], SCENE).facts
    thin = [check_caption(c, SCENE).facts < seed for c in batch["caption"]]
    assert thin == [False, False]  # both state the seed's 7 facts; the second adds small and white
    out = apply_filters(batch, FilterConfig(), scene_wrong=[False, False], scene_thin=[True, False])
    assert out["reject"] == ["facts", None]
