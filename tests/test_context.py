"""One owner for a row's context (`unicorn.context`): the main job runs to a report on every seed kind that
`unicorn.seeds` accepts, and every site reads the context through `RowContext`."""

import json
import re
from pathlib import Path

import pytest

from tests.conftest import SHARED
from unicorn.cli import main
from unicorn.context import RowContext, kind_of
from unicorn.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
BOXES = SHARED / "llava_coco_samples" / "caps_boxes_coco2014_val_80.jsonl"
COCO = SHARED / "coco_captions_val2017" / "captions_val2017.json"


def sources(tmp_path) -> dict[str, str]:
    """One small seed source of every kind the seed reader accepts."""
    import datasets

    (tmp_path / "plain.txt").write_text("A red bus on a street.\nTwo dogs in the snow.\nA bowl of fruit.\n")
    (tmp_path / "cc.tsv").write_text("a man surfing\thttp://x/1.jpg\na kite in the sky\thttp://x/2.jpg\n")
    (tmp_path / "labels.txt").write_text("goldfish\n")
    datasets.Dataset.from_dict({"caption": ["a boat at sea", "a cat asleep"]}).save_to_disk(tmp_path / "ds")
    world = tmp_path / "world.jsonl"
    world.write_text("".join((ROOT / "seeds" / "world.jsonl").read_text().splitlines(keepends=True)[:3]))
    out = {
        "txt": str(tmp_path / "plain.txt"),
        "tsv": str(tmp_path / "cc.tsv"),
        "domain": f"domain:{tmp_path / 'labels.txt'}",
        "hf": f"hf:{tmp_path / 'ds'}",
        "world-jsonl": str(world),
        "world-n": "world:3@5",
    }
    if BOXES.is_file():
        out["boxes-jsonl"] = str(BOXES)
    if COCO.is_file():
        out["coco-json"] = str(COCO)
    return out


def test_the_main_job_reports_on_every_seed_kind(tmp_path, capsys):
    if not BOXES.is_file():
        pytest.skip(f"LLaVA's captions + boxes not found at {BOXES} (set UNICORN_SHARED_DATA)")
    for name, source in sources(tmp_path).items():
        config = tmp_path / f"{name}.yaml"
        config.write_text(
            f"seeds: {{source: '{source}', limit: 4}}\ncaptions: {{k: 0}}\ninstruct: {{llm_share: 0.0}}\n"
            f"embed: {{projector: {ROOT / 'checkpoints' / 'world-projector'}}}\nshard_size: 2\n"
        )
        out = tmp_path / f"run-{name}"
        assert main(["run", str(config), "--out", str(out)]) == 0, (name, capsys.readouterr().err[-800:])
        report = (out / "report.md").read_text()
        assert "## What the figures cover" in report and "## Counts" in report, name
        kinds = next(line for line in report.splitlines() if line.startswith("| row context"))
        expected = "world" if name.startswith("world") else "boxes" if name.startswith("boxes") else "none"
        found = dict(
            re.findall(r"(world|boxes|none) (\d+)", kinds.replace("scene graphs ", "").replace("captions + ", ""))
        )
        counts = {k: int(v) for k, v in found.items()}
        assert counts[expected] == sum(counts.values()) > 0, (name, kinds)
        if expected != "none":  # programs ask about world scenes and boxes alike
            assert (out / "instructions").is_dir() and any(p.stat().st_size for p in (out / "instructions").iterdir())
        assert main(["validate", str(out)]) == 0


def test_row_context_kinds_and_refusals():
    world = {"objects": [{"shape": "square", "colour": "red", "size": "large", "texture": "plain", "x": 0, "y": 0}]}
    boxes = {"captions": ["a dog"], "instances": [{"category": "dog", "bbox": [0, 0, 1, 1]}]}
    assert [kind_of(x) for x in (world, boxes, None, {})] == ["world", "boxes", "none", "none"]
    assert RowContext.decode(json.dumps(boxes)).categories == {"dog"}
    assert RowContext.decode(RowContext.decode(world).encode()) == RowContext.decode(world)  # round trip
    assert RowContext.decode(None).encode() is None and not RowContext.decode(None)
    with pytest.raises(InputError, match="neither a world scene graph nor captions"):
        RowContext.decode({"objects": "many"})


def test_config_mistakes_are_caught_before_the_folder_or_a_model(tmp_path, capsys):
    """A typo in embed.projector, or a projector of another width than the encoder, is one line within a second,
    before the output folder is made or a model loads; the corrected config then runs in the same folder."""
    import time

    import numpy as np

    from modality_transfer import create_projector

    create_projector("mean_shift").fit(np.eye(8, 64, dtype=np.float32), np.eye(8, 64, dtype=np.float32)).save(
        tmp_path / "p64"
    )
    good = ROOT / "checkpoints" / "world-projector"
    for projector, message in ((tmp_path / "typo", "is not a projector folder"), (tmp_path / "p64", "64-d")):
        config = tmp_path / "c.yaml"
        config.write_text(
            f"seeds: {{source: {ROOT / 'seeds' / 'world.jsonl'}, limit: 2}}\ncaptions: {{k: 2}}\n"
            f"instruct: {{llm_share: 0.0}}\nembed: {{projector: {projector}}}\n"
        )
        start = time.perf_counter()
        assert main(["run", str(config), "--out", str(tmp_path / "run"), "--no-report"]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err and time.perf_counter() - start < 5
        assert not (tmp_path / "run").exists()
    config.write_text(config.read_text().replace(str(tmp_path / "p64"), str(good)).replace("k: 2", "k: 0"))
    assert main(["run", str(config), "--out", str(tmp_path / "run"), "--no-report"]) == 0


def test_index_over_a_run_with_a_missing_shard_file_is_one_line(tmp_path, capsys):
    from tests.test_scale import quick_config, seeds_file

    config = quick_config(tmp_path, seeds_file(tmp_path, 4), shard_size=2)
    assert main(["run", str(config), "--out", str(tmp_path / "run"), "--no-report"]) == 0
    (tmp_path / "run" / "image_emb" / "00000001.npy").unlink()
    capsys.readouterr()
    assert main(["index", str(tmp_path / "run"), "--out", str(tmp_path / "index")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "shard 1: image_emb/00000001.npy is missing" in err
