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
    assert len(rows) == 200 and stats["read"] == 25014 and len({r["id"] for r in rows}) == 200


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
