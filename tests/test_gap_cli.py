"""The `unicorn gap` commands, run as a user runs them: a real subprocess, real files."""

import json
import subprocess
import sys

import numpy as np
import pytest


def unicorn(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "unicorn.cli", *map(str, args)], capture_output=True, text=True, cwd=cwd
    )


@pytest.fixture()
def files(pairs, tmp_path):
    text, image = pairs
    np.save(tmp_path / "t.npy", text)
    np.save(tmp_path / "i.npy", image)
    return tmp_path


def test_fit_apply_eval(files):
    t, i, p, s = files / "t.npy", files / "i.npy", files / "proj", files / "s.npy"
    r = unicorn("gap", "fit", "--method", "linear", "--param", "alpha=0.5", "--text", t, "--image", i, "--out", p)
    assert r.returncode == 0, r.stderr
    assert json.loads((p / "config.json").read_text())["params"] == {"alpha": 0.5}
    r = unicorn("gap", "apply", "--projector", p, "--text", t, "--out", s, "--chunk-size", 64)
    assert r.returncode == 0, r.stderr
    synth = np.load(s)
    assert synth.shape == np.load(t).shape
    r = unicorn("gap", "eval", "--projector", p, "--text", t, "--image", i, "--json", files / "e.json")
    assert r.returncode == 0, r.stderr
    metrics = json.loads((files / "e.json").read_text())["metrics"]
    assert metrics["cos_paired"] > 0.5


def test_bench_json_and_plot(files):
    out, png = files / "b.json", files / "b.png"
    r = unicorn(
        "gap",
        "bench",
        "--text",
        files / "t.npy",
        "--image",
        files / "i.npy",
        "--folds",
        3,
        "--methods",
        "identity,mean_shift,learned",
        "--json",
        out,
        "--plot",
        png,
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    assert report["n"] == 300 and report["dim"] == 64 and report["folds"] == 3
    assert set(report["methods"]) == {"identity", "mean_shift", "learned"}
    assert report["methods"]["mean_shift"]["centroid_gap"] < report["methods"]["identity"]["centroid_gap"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_is_deterministic(files):
    a, b = files / "a.json", files / "b.json"
    for out in (a, b):
        args = ("gap", "bench", "--text", files / "t.npy", "--image", files / "i.npy", "--folds", 3, "--json", out)
        assert unicorn(*args).returncode == 0
    assert a.read_text() == b.read_text()


def _one_line_error(r):
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = [line for line in r.stderr.splitlines() if line.strip() and "it/s" not in line and "fit/s" not in line]
    assert len(lines) == 1 and lines[0].startswith("unicorn: error:"), r.stderr
    return lines[0]


def test_bad_inputs_exit_2_and_write_nothing(files, pairs):
    text, image = pairs
    t, i = files / "t.npy", files / "i.npy"
    np.save(files / "short.npy", image[:-5])
    nan = text.copy()
    nan[3, 0] = np.nan
    np.save(files / "nan.npy", nan)
    zero = text.copy()
    zero[7] = 0
    np.save(files / "zero.npy", zero)
    np.save(files / "empty.npy", np.zeros((0, 64), np.float32))
    np.save(files / "flat.npy", text[0])
    np.save(files / "narrow.npy", text[:, :32])
    (files / "junk.npy").write_bytes(b"not an array")
    assert "row counts differ" in _one_line_error(
        unicorn("gap", "fit", "--method", "linear", "--text", t, "--image", files / "short.npy", "--out", files / "p0")
    )
    bad_texts = [
        ("nan.npy", "NaN"),
        ("zero.npy", "zero vector in row 7"),
        ("empty.npy", "empty"),
        ("flat.npy", "2-D"),
        ("junk.npy", "not a readable"),
        ("nope.npy", "not found"),
    ]
    for k, (name, message) in enumerate(bad_texts, start=1):
        r = unicorn("gap", "fit", "--method", "center", "--text", files / name, "--out", files / f"p{k}")
        assert message in _one_line_error(r), name
    assert not any((files / f"p{k}").exists() for k in range(0, 7))

    assert (
        unicorn("gap", "fit", "--method", "mean_shift", "--text", t, "--image", i, "--out", files / "proj").returncode
        == 0
    )
    assert "dimension 32, expected 64" in _one_line_error(
        unicorn("gap", "apply", "--projector", files / "proj", "--text", files / "narrow.npy", "--out", files / "s.npy")
    )
    assert "NaN" in _one_line_error(
        unicorn(
            "gap",
            "apply",
            "--projector",
            files / "proj",
            "--text",
            files / "nan.npy",
            "--out",
            files / "s.npy",
            "--chunk-size",
            2,
        )
    )
    assert not (files / "s.npy").exists() and not list(files.glob(".s.npy*"))

    # An existing output survives a failed run.
    assert unicorn("gap", "apply", "--projector", files / "proj", "--text", t, "--out", files / "s.npy").returncode == 0
    before = (files / "s.npy").read_bytes()
    _one_line_error(
        unicorn("gap", "apply", "--projector", files / "proj", "--text", files / "nan.npy", "--out", files / "s.npy")
    )
    assert (files / "s.npy").read_bytes() == before

    (files / "proj" / "weights.safetensors").write_bytes(b"garbage")
    assert "altered" in _one_line_error(
        unicorn("gap", "apply", "--projector", files / "proj", "--text", t, "--out", files / "s2.npy")
    )
    assert "config.json is missing" in _one_line_error(
        unicorn("gap", "eval", "--projector", files, "--text", t, "--image", i)
    )
    assert "give both" in _one_line_error(unicorn("gap", "bench", "--text", t))
    assert "unknown methods" in _one_line_error(unicorn("gap", "bench", "--methods", "identity,bogus"))
    assert "folds must be" in _one_line_error(unicorn("gap", "bench", "--text", t, "--image", i, "--folds", 1))
