import json

import numpy as np
import pytest

from unicorn.errors import InputError
from unicorn.world import SHAPES, SceneGraph, WorldConfig, captions, render, sample_scenes
from unicorn.world.caption import caption


def test_scenes_are_seeded_and_batch_independent():
    a = sample_scenes(20, seed=3)
    assert a == sample_scenes(20, seed=3)
    assert a[10:] == sample_scenes(10, seed=3, start=10)  # scene k does not depend on the batch
    assert a != sample_scenes(20, seed=4)


def test_scene_contents_follow_the_config():
    config = WorldConfig(shapes=("circle", "star"), colours=("red",), min_objects=2, max_objects=3)
    for scene in sample_scenes(50, seed=0, config=config):
        assert 2 <= len(scene.objects) <= 3
        assert {o.shape for o in scene.objects} <= {"circle", "star"}
        assert {o.colour for o in scene.objects} == {"red"}
        assert any(rel == "same colour as" for _, rel, _ in scene.relations)


def test_relations_match_geometry():
    for scene in sample_scenes(50, seed=1):
        for i, rel, j in scene.relations:
            a, b = scene.objects[i], scene.objects[j]
            if rel == "left of":
                assert a.x < b.x and (j, "right of", i) in scene.relations
            if rel == "above":
                assert a.y < b.y and (j, "below", i) in scene.relations


def test_objects_do_not_overlap():
    from unicorn.world.scene import SIZES

    for scene in sample_scenes(100, seed=2):
        objs = scene.objects
        for k, a in enumerate(objs):
            for b in objs[k + 1 :]:
                assert np.hypot(a.x - b.x, a.y - b.y) > (SIZES[a.size] + SIZES[b.size]) / 2


def test_render_draws_each_object_in_its_colour():
    from unicorn.world.scene import COLOURS, Obj, relations_of

    obj = Obj("square", "red", "large", "plain", 0.5, 0.5)
    img = np.asarray(render(SceneGraph((obj,), relations_of((obj,))), size=64))
    assert img.shape == (64, 64, 3)
    assert tuple(img[32, 32]) == COLOURS["red"]  # the centre is the object
    assert tuple(img[2, 2]) == (128, 128, 128)  # the corner is background
    a, b = (np.asarray(render(s, 64)) for s in sample_scenes(2, seed=0))
    assert not np.array_equal(a, b)


def test_dense_captions_are_exact():
    for scene, (short, dense) in zip(
        sample_scenes(30, seed=5), captions(sample_scenes(30, seed=5), per_scene=2), strict=True
    ):
        for o in scene.objects:
            assert o.shape in dense and o.colour in dense and o.size in dense
        assert short.endswith(".") and short[0].isupper()
        words = {1: "one", 2: "two", 3: "three", 4: "four"}
        assert words[len(scene.objects)] in dense


def test_captions_vary():
    scene = sample_scenes(1, seed=0)[0]
    rng = np.random.default_rng(0)
    assert len({caption(scene, rng, "short") for _ in range(20)}) >= 5


def test_scene_json_roundtrip():
    scene = sample_scenes(1, seed=7)[0]
    assert SceneGraph.from_dict(json.loads(json.dumps(scene.to_dict()))) == scene


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"shapes": ("circle", "hexagon")}, "unknown shape 'hexagon'"),
        ({"colours": ("red", "teal")}, "unknown colour 'teal'"),
        ({"min_objects": 0, "max_objects": 0}, "objects per scene"),
        ({"shapes": ()}, "at least one shape"),
        ({"image_size": 8}, "image_size"),
    ],
)
def test_bad_world_config(kwargs, match):
    with pytest.raises(InputError, match=match):
        WorldConfig(**kwargs)


def test_bad_scene_graphs():
    good = sample_scenes(1, seed=0)[0].to_dict()
    with pytest.raises(InputError, match="at least one object"):
        SceneGraph.from_dict({"objects": []})
    bad = json.loads(json.dumps(good))
    bad["objects"][0]["shape"] = "blob"
    with pytest.raises(InputError, match="unknown shape 'blob'"):
        SceneGraph.from_dict(bad)
    with pytest.raises(InputError, match="malformed"):
        SceneGraph.from_dict({"objects": [{"shape": "circle"}]})
    with pytest.raises(InputError, match="unknown caption style"):
        caption(sample_scenes(1)[0], np.random.default_rng(0), "poetic")
    assert set(SHAPES) >= {"circle", "square", "triangle"}
