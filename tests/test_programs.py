"""ProVision-style question programs: every answer must be exactly what the scene graph says."""

import json
from collections import Counter

import numpy as np
import pytest

from tests.conftest import SHARED
from unicorn.errors import InputError
from unicorn.instruct.programs import (
    LETTERS,
    NUMBER_WORDS,
    PROGRAMS,
    QA,
    Thing,
    balance,
    generate,
    refer,
    things_from_instances,
    things_from_scene,
    world_vocab,
)
from unicorn.world import sample_scenes

LLAVA = SHARED / "llava_coco_samples" / "caps_boxes_coco2014_val_80.jsonl"


@pytest.fixture(scope="module")
def scenes():
    return sample_scenes(200, seed=3)


def _qas(scenes, kinds, seed=0):
    rng = np.random.default_rng(seed)
    for scene in scenes:
        things = things_from_scene(scene)
        for qa in generate(things, rng, vocab=world_vocab(), kinds=kinds, per_scene=3):
            yield things, qa


def _find(things, phrase):
    """The things a 'the [size] [colour] [texture] name' phrase matches."""
    words = phrase.removeprefix("the ").split()
    return [t for t in things if t.name == words[-1] and all(w in t.attributes.values() for w in words[:-1])]


def _winner(things, question):
    """An independent oracle for 'What is the left-most / largest ... shape?'."""
    which = question.split("the ")[1].split()[0]
    key = {
        "left-most": lambda t: t.centre[0],
        "right-most": lambda t: -t.centre[0],
        "top-most": lambda t: t.centre[1],
        "bottom-most": lambda t: -t.centre[1],
        "largest": lambda t: -t.area,
        "smallest": lambda t: t.area,
    }[which]
    return min(things, key=key).name


def test_counting_answers_are_exact(scenes):
    seen = 0
    for things, qa in _qas(scenes, ["counting"]):
        noun = qa.question.removeprefix("How many ").removesuffix(" are there?")
        expected = (
            len(things)
            if noun in ("shapes", "objects")
            else sum(t.name + "s" == noun or t.name + "es" == noun for t in things)
        )
        assert qa.answer == NUMBER_WORDS[expected]
        seen += 1
    assert seen > 100


def test_existence_answers_are_exact(scenes):
    answers = Counter()
    for things, qa in _qas(scenes, ["existence"]):
        phrase = qa.question.removeprefix("Is there ").removesuffix(" in the image?").split(" ", 1)[1]
        words = phrase.split()
        present = any(t.name == words[-1] and all(w in t.attributes.values() for w in words[:-1]) for t in things)
        assert qa.answer == ("yes" if present else "no")
        answers[qa.answer] += 1
    assert answers["yes"] > 20 and answers["no"] > 20


def test_attribute_questions_refer_to_one_thing_and_never_give_the_answer_away(scenes):
    for things, qa in _qas(scenes, ["attribute"]):
        ref = qa.question.split(" is ", 1)[1].rstrip("?")
        matches = _find(things, ref)
        assert len(matches) == 1, qa
        assert qa.answer in matches[0].attributes.values()
        assert qa.answer not in ref.split()


def test_relation_and_extreme_answers_follow_the_geometry(scenes):
    for things, qa in _qas(scenes, ["relation", "extreme"]):
        if qa.kind == "relation":
            a, rest = qa.question.removeprefix("Is ").split(" to the left of " if "left" in qa.question else " above ")
            (ta,), (tb,) = _find(things, a), _find(things, rest.rstrip("?"))
            axis = 0 if "left" in qa.question else 1
            assert qa.answer == ("yes" if ta.centre[axis] < tb.centre[axis] else "no")
        else:
            assert qa.answer == _winner(things, qa.question)


def test_multiple_choice_has_four_distinct_options(scenes):
    n = 0
    for _, qa in _qas(scenes, ["multiple_choice"]):
        options = _split_options(qa.question)
        assert [o[0] for o in options] == list(LETTERS)
        assert len({o[3:] for o in options}) == 4
        assert qa.answer in LETTERS
        n += 1
    assert n > 50


def _split_options(question):
    body = question.split("Options: ")[1].removesuffix(". Answer with the letter.")
    parts, current = [], ""
    for token in body.split(" "):
        if len(token) == 2 and token[0] in LETTERS and token[1] == "." and current:
            parts.append(current.strip())
            current = ""
        current += token + " "
    parts.append(current.strip())
    return parts


def test_multiple_choice_answer_matches_the_plain_question(scenes):
    rng_mc, checked = np.random.default_rng(5), 0
    for scene in scenes:
        things = things_from_scene(scene)
        qa = PROGRAMS["multiple_choice"](things, rng_mc, world_vocab())
        if qa is None:
            continue
        options = {p[0]: p[3:] for p in _split_options(qa.question)}
        chosen = options[qa.answer]
        base = qa.question.split(" Options:")[0]
        if base.startswith("What is the"):
            assert chosen == _winner(things, base)
        else:
            (thing,) = _find(things, base.split(" is ", 1)[1].rstrip("?"))
            assert chosen in thing.attributes.values()
        checked += 1
    assert checked > 50


def test_refer_is_unique_or_none():
    a = Thing("circle", (0, 0, 0.2, 0.2), {"colour": "red", "size": "small", "texture": "plain"})
    b = Thing("circle", (0.5, 0.5, 0.7, 0.7), {"colour": "blue", "size": "small", "texture": "plain"})
    c = Thing("circle", (0.7, 0.1, 0.9, 0.3), {"colour": "blue", "size": "small", "texture": "plain"})
    assert refer([a, b], 0) == "the red circle"
    assert refer([a, b, c], 1) is None  # two identical blue circles cannot be told apart


def test_balance_levels_answers_within_a_kind():
    qas = [QA(f"q{i}", "no", "existence") for i in range(900)] + [QA(f"p{i}", "yes", "existence") for i in range(100)]
    kept = Counter(q.answer for q in balance(qas, np.random.default_rng(0)))
    assert abs(kept["no"] - kept["yes"]) < 40
    assert kept["yes"] == 100
    with pytest.raises(InputError):
        balance(qas, np.random.default_rng(0), strength=2)


def test_generation_is_seeded(scenes):
    first = [qa for _, qa in _qas(scenes[:30], None, seed=7)]
    again = [qa for _, qa in _qas(scenes[:30], None, seed=7)]
    assert first == again and len(first) > 60


def test_unknown_kind_is_refused(scenes):
    with pytest.raises(InputError, match="unknown question kind 'colourfulness'"):
        generate(things_from_scene(scenes[0]), np.random.default_rng(0), vocab=world_vocab(), kinds=["colourfulness"])


def test_bad_coco_instances_are_refused():
    with pytest.raises(InputError, match="instance 0"):
        things_from_instances([{"category": "dog"}])
    with pytest.raises(InputError, match="invalid bbox"):
        things_from_instances([{"category": "dog", "bbox": [0.5, 0.5, 0.2, 0.9]}])


def test_real_coco_instances():
    if not LLAVA.is_file():
        pytest.skip(f"COCO instances not found at {LLAVA}")
    rows = [json.loads(line) for line in LLAVA.read_text().splitlines()]
    vocab = {"name": tuple(sorted({i["category"] for r in rows for i in r["instances"]}))}
    rng, total = np.random.default_rng(0), Counter()
    for row in rows:
        things = things_from_instances(row["instances"])
        for qa in generate(things, rng, vocab=vocab, per_scene=4):
            total[qa.kind] += 1
            if qa.kind == "counting" and qa.question.startswith("How many objects"):
                assert qa.answer == NUMBER_WORDS[min(len(things), 10)]
    assert {"existence", "counting", "extreme"} <= set(total)
