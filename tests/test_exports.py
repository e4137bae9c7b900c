"""Exports that real trainers read unchanged: Unicorn's released trainer (`--format unicorn`), read here by a loader
written from that trainer's documented format (its `LazySupervisedDataset` and collator), not from our code; a tiny
model then takes a training step on what it read."""

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from tests.test_scale import quick_config, seeds_file
from unicorn.cli import main


class _NumpyOnly(pickle.Unpickler):
    """The test reads the exported pickles (a trainer would use pickle.load) allowing only numpy's array rebuilders:
    the files are the peer's format, and even our own test never runs arbitrary code from one."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}  # fmt: skip

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed")
        return super().find_class(module, name)


def trainer_loader(folder: Path, data: str):
    """What Unicorn's LazySupervisedDataset does: every .pkl in the embedding folder extended into one list of
    {"id", "embed"}; each JSON row whose `caption` is present is looked up by `str(id)`; rows without one are None."""
    embeddings = []
    for path in sorted((folder / "embeddings").iterdir()):
        if path.name.endswith(".pkl"):
            embeddings.extend(_NumpyOnly(io.BytesIO(path.read_bytes())).load())
    rows = json.loads((folder / data).read_text())
    by_id = {str(e["id"]): e["embed"] for e in embeddings}
    return [(row, by_id.get(str(row["id"]))) if "caption" in row else (row, None) for row in rows], embeddings


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exports")
    config = quick_config(tmp, seeds_file(tmp, 6), shard_size=3)
    assert main(["run", str(config), "--out", str(tmp / "run"), "--no-report"]) == 0
    return tmp / "run"


def test_unicorn_export_is_what_the_released_trainer_reads(run, tmp_path):
    import torch

    out = tmp_path / "unicorn"
    assert main(["export", str(run), "--format", "unicorn", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["FORMAT.md", "embeddings", "instructions.json", "pretrain.json"]
    pretrain, embeddings = trainer_loader(out, "pretrain.json")
    instructions, _ = trainer_loader(out, "instructions.json")
    assert all(set(e) == {"id", "embed"} and isinstance(e["id"], str) for e in embeddings)
    assert all(e["embed"].dtype == np.float32 and e["embed"].shape == (256,) for e in embeddings)
    assert len(pretrain) == len(embeddings) and all(embed is not None for _, embed in pretrain)
    for row, _ in pretrain:  # Bunny's "plain" template: exactly two turns, the image first, then the caption
        turns = row["conversations"]
        assert len(turns) == 2 and turns[0]["value"].startswith("<image>\n") and turns[1]["value"] == row["caption"]
    assert instructions and all(embed is not None for _, embed in instructions)  # every id has its embedding
    assert all(row["conversations"][0]["from"] == "human" for row, _ in instructions)

    # the trainer's collator stacks torch.from_numpy(embed); a float32 connector then takes a step on it
    torch.manual_seed(0)
    batch = torch.stack([torch.from_numpy(embed) for _, embed in pretrain[:4]])
    connector = torch.nn.Sequential(torch.nn.Linear(256, 32), torch.nn.GELU(), torch.nn.Linear(32, 32))
    target = torch.randn(4, 32)
    optimiser = torch.optim.SGD(connector.parameters(), lr=0.5)
    losses = []
    for _ in range(2):
        loss = torch.nn.functional.mse_loss(connector(batch), target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[1] < losses[0]


def test_unicorn_export_of_released_stage_3_and_float16(run, tmp_path):
    from unicorn.pipeline.storage import iter_shards

    out = tmp_path / "released"
    assert main(["export", str(run), "--format", "unicorn", "--embeddings", "released", "--dtype", "float16",
                 "--out", str(out)]) == 0  # fmt: skip
    _, embeddings = trainer_loader(out, "pretrain.json")
    text = np.concatenate([s.text_emb.astype(np.float32) for s in iter_shards(run)])
    unit = text / np.linalg.norm(text, axis=1, keepdims=True)
    expected = unit - unit.mean(0)  # data/embed_mean.py: minus the mean, no image mean, not renormalised
    got = np.stack([e["embed"] for e in embeddings])
    assert got.dtype == np.float16 and np.allclose(got.astype(np.float32), expected, atol=2e-3)


def test_exports_refuse_a_bad_dtype_and_an_occupied_folder(run, tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.txt").write_text("mine")
    assert main(["export", str(run), "--format", "unicorn", "--out", str(tmp_path / "taken")]) == 2
    assert "exists and is not empty" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["export", str(run), "--format", "llava", "--dtype", "int8", "--out", str(tmp_path / "x")])
    assert e.value.code == 2


def test_gap_fit_on_own_pairs_gives_a_projector_the_world_bench_uses(tmp_path, capsys):
    """A user's CLIP (here world-CLIP) and their own image-caption pairs (rendered world scenes): one command."""
    from unicorn.encoders import create_encoder
    from unicorn.world.downstream import BenchConfig, world_bench

    assert main(["world", "sample", "--n", "60", "--seed", "11", "--out", str(tmp_path / "scenes.jsonl"),
                 "--images", str(tmp_path / "images")]) == 0  # fmt: skip
    rows = [json.loads(line) for line in (tmp_path / "scenes.jsonl").read_text().splitlines()]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"image": f"images/{r['id']}.png", "caption": r["dense_caption"]}) + "\n"
                             for r in rows))  # fmt: skip
    out = tmp_path / "projector"
    assert main(["gap", "fit", "--method", "mean_shift", "--pairs", str(pairs), "--encoder", "world",
                 "--out", str(out)]) == 0  # fmt: skip
    assert "embedded 60 pairs with world" in capsys.readouterr().out
    small = dict(fit_scenes=100, train_scenes=100, test_scenes=60, epochs=3, downstream_seeds=1)
    report = world_bench(create_encoder("world"), BenchConfig(seed=2, projectors=(str(out),), **small),
                         log=lambda m: None)  # fmt: skip
    assert all(str(out) in accs for accs in report["tasks"].values())
    capsys.readouterr()

    # a missing image, then a line without a caption: one line each, exit 2, before any model loads
    bad = tmp_path / "bad.jsonl"
    for line, message in ((json.dumps({"image": "images/nope.png", "caption": "x"}), "line 2: image"),
                          (json.dumps({"image": f"images/{rows[0]['id']}.png"}), "line 2 has no caption")):  # fmt: skip
        bad.write_text(pairs.read_text().splitlines()[0] + "\n" + line + "\n")
        assert main(["gap", "fit", "--method", "mean_shift", "--pairs", str(bad), "--encoder", "world",
                     "--out", str(tmp_path / "never")]) == 2  # fmt: skip
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and message in err and not (tmp_path / "never").exists()
