"""Stage 2: LLM-written conversations (schema, repair loop, rejects) and programmatic ones (exact, LLaVA format)."""

import json

import pytest

from tests.conftest import SHARED, openai_stub
from unicorn.cli import main
from unicorn.instruct.conversations import conversation_error, to_llava
from unicorn.instruct.from_programs import program_conversations
from unicorn.instruct.writer import parse_turns, turn_schema, write_conversations
from unicorn.llm import create_llm
from unicorn.world import captions, sample_scenes

LLAVA = SHARED / "llava_coco_samples" / "caps_boxes_coco2014_val_80.jsonl"
GOOD = json.dumps(
    [
        {"type": "short", "question": "What is on the sofa?", "answer": "A dog is on the sofa."},
        {"type": "yes_no", "question": "Is there a dog on the sofa?", "answer": "Yes"},
        {"type": "summary", "question": "Describe the image briefly.", "answer": "A dog on a sofa."},
    ]
)


def test_parse_turns_reports_why():
    schema = turn_schema(3, 8)
    assert parse_turns("Sure! " + GOOD + " Hope this helps.", schema)[0] is not None
    assert parse_turns("no list here", schema) == (None, "no JSON list in the reply")
    assert parse_turns('[{"type": "short",]', schema)[1].startswith("invalid JSON")
    assert (
        "schema" in parse_turns(json.dumps([{"type": "poem", "question": "Why is it?", "answer": "x"}] * 3), schema)[1]
    )
    yes_no = [{"type": "yes_no", "question": "Is it a dog?", "answer": "Maybe so."}] * 3  # not a closed answer
    assert "schema" in parse_turns(json.dumps(yes_no), schema)[1]
    assert "schema" in parse_turns("[]", schema)[1]


def test_llava_format_checks():
    row = to_llava("x", [("What is it?", "A cat."), ("Colour?", "Black.")])
    assert conversation_error(row) is None and row["conversations"][0]["value"].startswith("<image>\n")
    bad = {**row, "conversations": row["conversations"][1:3]}
    assert "should be from human" in conversation_error(bad)
    bad = to_llava("x", [("What is it?", "A cat."), ("<image> again?", "No.")])
    assert "first human turn only" in conversation_error(bad)


@pytest.fixture()
def replies():
    """Replies with broken JSON first, then valid JSON once asked to repair."""
    broken = '[{"type": "short", "question": "Broken'
    repaired = lambda body: any(m["role"] == "assistant" for m in body["messages"])  # noqa: E731
    with openai_stub(lambda body, _: (200, GOOD if repaired(body) else broken)) as url:
        yield f"openai:{url}#m"


def test_repair_loop_fixes_or_rejects(replies):
    batch = {"id": ["a", "b"], "caption": ["A dog on a sofa.", "A brown dog sleeps on a sofa."]}
    rows, rejects = write_conversations(batch, create_llm(replies), repairs=1)
    assert [r["attempts"] for r in rows] == [2, 2] and rejects == []
    assert all(conversation_error(r) is None for r in rows)
    rows, rejects = write_conversations(batch, create_llm(replies), repairs=0)
    assert rows == [] and [r["reason"] for r in rejects] == ["no JSON list in the reply"] * 2


def test_llm_written_with_the_bundled_gemma(tmp_path):
    batch = {"id": ["c0"], "caption": ["A black dog sits on a red couch next to a window."]}
    rows, rejects = write_conversations(batch, create_llm("llamacpp:default"), repairs=1, max_tokens=200)
    assert len(rows) + len(rejects) == 1
    for r in rows:
        assert conversation_error(r) is None and 2 <= len(r["conversations"]) // 2 <= 8  # ungrounded turns dropped
    for r in rejects:
        assert r["reason"] and r["id"] == "c0"


def test_programmatic_conversations_from_world_scenes():
    scenes = sample_scenes(40, seed=1)
    rows = [{"id": f"w{k}", "scene": s.to_dict()} for k, s in enumerate(scenes)]
    out, rejects = program_conversations(rows, seed=0, turns=4)
    assert len(out) == 40 and rejects == [] and all(conversation_error(r) is None for r in out)
    assert all(1 <= len(r["conversations"]) // 2 <= 4 for r in out)
    assert program_conversations(rows, seed=0, turns=4)[0] == out
    counts = [
        (r, c)
        for r in out
        for c in zip(r["conversations"][::2], r["conversations"][1::2], strict=True)
        if "How many shapes" in c[0]["value"]
    ]
    for r, (_, a) in counts:
        n = len(scenes[int(r["id"][1:])].objects)
        assert a["value"] == ["zero", "one", "two", "three", "four"][n]


def test_programmatic_conversations_from_real_coco_instances(tmp_path):
    if not LLAVA.is_file():
        pytest.skip(f"COCO instances not found at {LLAVA}")
    out = tmp_path / "out"
    assert main(["instruct", "--scenes", str(LLAVA), "--out", str(out), "--turns", "3"]) == 0
    rows = [json.loads(x) for x in (out / "instructions.jsonl").read_text().splitlines()]
    rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
    assert len(rows) + len(rejects) == 80 and len(rows) >= 70
    assert all(conversation_error(r) is None for r in rows) and all(r["reason"] for r in rejects)


def test_world_captions_feed_the_instruct_cli(tmp_path):
    scenes = sample_scenes(5, seed=2)
    path = tmp_path / "s.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"x{k}", "caption": c[0], "scene": s.to_dict()}) + "\n"
            for k, (s, c) in enumerate(zip(scenes, captions(scenes), strict=True))
        )
    )
    assert main(["instruct", "--scenes", str(path), "--out", str(tmp_path / "o")]) == 0
    assert len((tmp_path / "o" / "instructions.jsonl").read_text().splitlines()) == 5
