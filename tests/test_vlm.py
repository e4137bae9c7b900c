"""`unicorn vlm train`: the LLaVA recipe on a tiny real export: deterministic under its seed, its loss falls, and bad
input is one line with exit 2."""

import json
import shutil

import numpy as np
import pytest

from tests.test_scale import quick_config, seeds_file
from unicorn.cli import main

FAST = ["--stage1-steps", "15", "--stage2-steps", "15", "--batch-size", "8", "--d-model", "32", "--layers", "1"]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("vlm")
    config = quick_config(tmp, seeds_file(tmp, 8), shard_size=4)
    assert main(["run", str(config), "--out", str(tmp / "run"), "--no-report"]) == 0
    assert main(["export", str(tmp / "run"), "--format", "llava", "--out", str(tmp / "export")]) == 0
    return tmp / "export"


def test_training_is_deterministic_and_its_loss_falls(export, tmp_path, capsys):
    capsys.readouterr()
    for name in ("a", "b"):
        assert main(["vlm", "train", str(export), "--out", str(tmp_path / name), "--seed", "3", *FAST]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["last_loss"] < report["first_loss"] and report["steps"] == 30
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()
    assert main(["vlm", "train", str(export), "--out", str(tmp_path / "c"), "--seed", "4", *FAST]) == 0
    assert (tmp_path / "c" / "model.safetensors").read_bytes() != (tmp_path / "a" / "model.safetensors").read_bytes()

    from unicorn.vlm import generate, load_vlm, read_export

    model, tok = load_vlm(tmp_path / "a")
    replies = generate(model, tok, read_export(export).embeddings[:2], "Describe the image briefly.", max_tokens=5)
    assert len(replies) == 2 and all(isinstance(r, str) for r in replies)


def test_bad_input_is_one_line(export, tmp_path, capsys):
    assert main(["vlm", "train", str(export), "--out", str(tmp_path / "ok"), *FAST]) == 0
    no_embeddings = tmp_path / "no-emb"
    shutil.copytree(export, no_embeddings)
    (no_embeddings / "embeddings.npy").unlink()
    wider = tmp_path / "wider"
    shutil.copytree(export, wider)
    np.save(wider / "embeddings.npy", np.zeros((len(np.load(export / "embeddings.npy")), 512), np.float32))
    empty = tmp_path / "empty"
    empty.mkdir()
    np.save(empty / "embeddings.npy", np.zeros((0, 256), np.float32))
    for name in ("embedding_ids.json", "llava.json", "pretrain.json"):
        (empty / name).write_text("[]")
    cases = [
        ([str(no_embeddings)], "has no embeddings.npy"),
        ([str(wider), "--init", str(tmp_path / "ok")], "connector for 256-d embeddings; the export's are 512-d"),
        ([str(empty)], "holds no rows to train on"),
        ([str(export), "--stage1-steps", "-1"], "stage1_steps must be >= 0"),
    ]
    capsys.readouterr()
    for args, message in cases:
        assert main(["vlm", "train", *args, "--out", str(tmp_path / "never")]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err, err
