"""Seed reading: every format, and every bad row counted rather than lost silently."""

import json

import pytest

from tests.conftest import SHARED
from unicorn.errors import InputError
from unicorn.seeds import read_seeds

COCO = SHARED / "coco_captions_val2017" / "captions_val2017.json"


def test_bad_rows_are_counted(tmp_path):
    path = tmp_path / "seeds.jsonl"
    lines = [
        json.dumps({"id": "a", "caption": "A dog on a beach."}).encode(),
        json.dumps({"id": "b", "caption": "   "}).encode(),  # empty
        json.dumps({"id": "c", "caption": "x" * 100_000}).encode(),  # a 100 KB seed
        b'{"id": "d", "caption": "caf\xe9 on a corner"}',  # invalid UTF-8 (latin-1 byte)
        json.dumps({"id": "a", "caption": "A second row with a used id."}).encode(),  # duplicate id
        b"{not json",
        json.dumps({"id": "e", "text": "Two  cats\nasleep."}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    rows, stats = read_seeds(str(path))
    assert [r["id"] for r in rows] == ["a", "e"]
    assert rows[1]["text"] == "Two cats asleep."
    assert stats == {
        "read": 7,
        "empty": 1,
        "too_long": 1,
        "invalid_utf8": 1,
        "malformed": 1,
        "duplicate_id": 1,
        "kept": 2,
    }


def test_text_tsv_and_domain_formats(tmp_path):
    (tmp_path / "a.txt").write_text("A red bus.\n\nA tall tree.\n")
    rows, stats = read_seeds(str(tmp_path / "a.txt"))
    assert [r["text"] for r in rows] == ["A red bus.", "A tall tree."] and stats["empty"] == 1
    (tmp_path / "cc.tsv").write_text("a man surfing\thttp://x/1.jpg\na bowl of fruit\thttp://x/2.jpg\n")
    assert [r["text"] for r in read_seeds(str(tmp_path / "cc.tsv"))[0]] == ["a man surfing", "a bowl of fruit"]
    (tmp_path / "labels.txt").write_text("goldfish\ntiger shark\n")
    rows, _ = read_seeds(f"domain:{tmp_path / 'labels.txt'}")
    assert len(rows) == 8 and rows[0]["text"] == "a photo of a goldfish."


def test_world_and_hf_sources(tmp_path):
    rows, _ = read_seeds("world:5@2")
    assert len(rows) == 5 and all(r["scene"]["objects"] for r in rows)
    import datasets

    datasets.Dataset.from_dict({"caption": ["a kite in the sky", "a boat"]}).save_to_disk(tmp_path / "ds")
    rows, _ = read_seeds(f"hf:{tmp_path / 'ds'}")
    assert [r["text"] for r in rows] == ["a kite in the sky", "a boat"]


def test_real_coco_captions():
    if not COCO.is_file():
        pytest.skip(f"COCO captions not found at {COCO}")
    rows, stats = read_seeds(str(COCO), limit=200)
    assert len(rows) == 200 and stats["read"] == 200 and len({r["id"] for r in rows}) == 200  # stops at the limit
    assert read_seeds(str(COCO))[1]["read"] == 25014


@pytest.mark.parametrize(
    "source, message",
    [
        ("/no/such/file.txt", "not found"),
        ("world:zero", "world:N"),
        ("world:0", "N >= 1"),
        ("domain:/nope.txt", "not found"),
    ],
)
def test_bad_sources(source, message):
    with pytest.raises(InputError, match=message):
        read_seeds(source)


def test_a_file_with_nothing_usable_is_an_error(tmp_path):
    (tmp_path / "empty.txt").write_text("\n \n")
    with pytest.raises(InputError, match="no usable seeds.*empty 2"):
        read_seeds(str(tmp_path / "empty.txt"))


@pytest.mark.parametrize(
    "instance, message",
    [
        ({"category": "dog", "bbox": [0.1, 0.2, 1.4, 0.9]}, "outside [0, 1]"),
        ({"category": "dog", "bbox": [0.5, 0.2, 0.1, 0.9]}, "x1 <= x2"),
        ({"category": "dog", "bbox": [0.1, 0.2, 0.3], "score": 0.9}, "unknown keys ['score']"),
        ({"category": "", "bbox": [0.1, 0.2, 0.3, 0.4]}, "category must be a non-empty string"),
        ({"category": "dog", "bbox": "0.1 0.2 0.3 0.4"}, "bbox must be [x1, y1, x2, y2]"),
    ],
)
def test_llava_context_with_malformed_boxes_is_one_line_and_loses_nothing(instance, message, tmp_path, capsys):
    from unicorn.cli import main

    good = {
        "id": "1",
        "captions": ["A dog on grass."],
        "instances": [{"category": "dog", "bbox": [0.1, 0.1, 0.5, 0.5]}],
    }
    bad = {"id": "2", "captions": ["A dog."], "instances": [instance]}
    seeds = tmp_path / "context.jsonl"
    seeds.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    config = tmp_path / "run.yaml"
    config.write_text(f"seeds: {{source: {seeds}}}\ncaptions: {{k: 0}}\ninstruct: {{llm_share: 0.0}}\n"
                      "embed: {encoder: 'st:default', projector: none}\n")  # fmt: skip
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["run", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{seeds} line 2: instance 0:" in err and message in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


@pytest.mark.skipif(not (SHARED / "llava_coco_samples").is_dir(), reason="shared LLaVA samples not found")
def test_llava_caps_and_boxes_are_seeds_with_their_context():
    rows, stats = read_seeds(str(SHARED / "llava_coco_samples" / "caps_boxes_coco2014_val_80.jsonl"))
    assert stats["kept"] == 80 and stats["malformed"] == 0
    first = rows[0]
    assert first["text"] == first["scene"]["captions"][0] and len(first["scene"]["captions"]) == 5
    assert all(0 <= v <= 1 for r in rows for i in r["scene"]["instances"] for v in i["bbox"])


def test_seeds_stream_and_a_limit_reads_no_more_than_it_needs(tmp_path):
    import time

    from unicorn.seeds import iter_seeds

    path = tmp_path / "big.txt"
    path.write_bytes(b"a caption\n" * 5 + b"\xff\xfe not utf-8\n" + b"another caption\n" * 1000)
    stream = iter_seeds(str(path), limit=5)
    assert len(list(stream)) == 5 and stream.stats["read"] == 5 and stream.stats["invalid_utf8"] == 0
    start = time.perf_counter()
    rows = list(iter_seeds("world:1000000@3", limit=3))  # a million scenes: only three are made
    assert [r["id"] for r in rows] == ["world-3-000000", "world-3-000001", "world-3-000002"]
    assert time.perf_counter() - start < 5
    from unicorn.world import captions, sample_scenes

    scenes = sample_scenes(3, seed=3)  # the world's own batch API: streamed seeds are the same scenes and captions
    assert [r["text"] for r in rows] == [c for (c,) in captions(scenes, seed=3, style="short")]
    assert [r["scene"] for r in rows] == [s.to_dict() for s in scenes]
    shards = list(iter_seeds(str(path)).shards(400))
    assert [i for i, _ in shards] == [0, 1, 2] and [len(s) for _, s in shards] == [400, 400, 205]
