"""`unicorn world bench` and the world CLI: report shape, determinism under a seed, and bad input."""

import json

import pytest

from unicorn.cli import main
from unicorn.encoders import create_encoder
from unicorn.world.downstream import TASKS, BenchConfig, format_table, markdown_table, world_bench

SMALL = dict(
    fit_scenes=150, train_scenes=150, test_scenes=100, epochs=5, downstream_seeds=2, projectors=("mean_shift", "linear")
)


@pytest.fixture(scope="module")
def encoder():
    return create_encoder("world")


def test_bench_reports_every_task_and_is_deterministic(encoder):
    first = world_bench(encoder, BenchConfig(seed=3, **SMALL), log=lambda m: None)
    assert set(first["tasks"]) == set(TASKS)
    for accs in first["tasks"].values():
        assert list(accs) == ["real", "raw_text", "mean_shift", "linear"]
        assert all(0 <= a <= 1 for a in accs.values())
    assert set(first["summary"]["count"]) == {
        "best",
        "share_of_real",
        "margin_over_raw_text",
        "meets_90pct",
        "meets_95pct",
    }
    # the mean over downstream seeds, their spread, and each source's worst task
    for task, accs in first["per_seed"].items():
        for source, runs in accs.items():
            assert len(runs) == 2
            assert first["tasks"][task][source] == pytest.approx(sum(runs) / 2, abs=1e-4)
            assert first["spread"][task][source] == pytest.approx(max(runs) - min(runs), abs=1e-4)
    for source, worst in first["worst_task"].items():
        shares = {t: a[source] / a["real"] for t, a in first["tasks"].items()}
        assert worst["share_of_real"] == pytest.approx(min(shares.values()), abs=1e-4)
        assert shares[worst["task"]] == pytest.approx(min(shares.values()), abs=1e-4)
    assert set(first["worst_task"]) == {"raw_text", "mean_shift", "linear"}
    rows = markdown_table(first).splitlines()
    assert len(rows) == 2 + 4 and rows[2].startswith("| real (accuracy) |")
    worst = first["worst_task"]["linear"]
    assert rows[-1].endswith(f"| {worst['task']} {100 * worst['share_of_real']:.1f}% |")
    assert first["sizes"]["vqa_test_questions"] > 100
    assert "best projector" in format_table(first)
    again = world_bench(encoder, BenchConfig(seed=3, **SMALL), log=lambda m: None)
    assert again["tasks"] == first["tasks"]


def test_bench_cli_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    args = ["world", "bench", "--train-scenes", "100", "--test-scenes", "60", "--fit-scenes", "100", "--epochs", "2"]
    args += ["--downstream-seeds", "1"]
    assert main([*args, "--projectors", "mean_shift", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report["tasks"]["vqa"]) == {"real", "raw_text", "mean_shift"}
    assert "task" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["world", "bench", "--encoder", "st:default"], "has no image tower"),
        (["world", "bench", "--projectors", "magic"], "unknown projector 'magic'"),
        (["world", "bench", "--encoder", "world:/nonexistent/ckpt"], "not found"),
        (["world", "bench", "--train-scenes", "0"], "train_scenes must be >= 1"),
        (["world", "bench", "--train-noise", "-1"], "train_noise must be in [0, 10]"),
        (["world", "bench", "--downstream-seeds", "0"], "downstream_seeds must be >= 1"),
        (["world", "train-clip", "--scenes", "0"], "scenes must be >= 1"),
        (["world", "train-clip", "--threads", "0"], "--threads must be >= 1"),
        (["world", "sample", "--n", "0", "--out", "x.jsonl"], "--n must be >= 1"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("unicorn: error:") and message in err and "\n" not in err


def test_sample_writes_seeds_and_images(tmp_path):
    out, images = tmp_path / "seeds.jsonl", tmp_path / "png"
    assert main(["world", "sample", "--n", "5", "--seed", "2", "--out", str(out), "--images", str(images)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 and len({r["id"] for r in rows}) == 5
    assert all(r["caption"] and r["dense_caption"] and r["scene"]["objects"] for r in rows)
    assert len(list(images.glob("*.png"))) == 5
