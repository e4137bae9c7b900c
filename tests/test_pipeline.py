"""`unicorn run` end to end with the real bundled models: validation, exports, report in a real browser,
kill-and-resume with SIGKILL, and bad input."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from unicorn.cli import main
from unicorn.errors import InputError
from unicorn.pipeline.config import load_config
from unicorn.pipeline.storage import RunFolder
from unicorn.pipeline.validate import validate_run

ROOT = Path(__file__).resolve().parents[1]
SMALL = """
seeds: {{source: {seeds}, limit: 6}}
captions: {{k: 1, max_tokens: 40}}
instruct: {{llm_share: 0.2, max_tokens: 96, max_turns: 3, repairs: 0}}
embed: {{projector: {projector}}}
shard_size: 2
"""


def write_config(tmp_path, name="run.yaml", **changes):
    text = SMALL.format(seeds=ROOT / "seeds" / "world.jsonl", projector=ROOT / "checkpoints" / "world-projector")
    for old, new in changes.items():
        text = text.replace(old, new)
    path = tmp_path / name
    path.write_text(text)
    return path


def records(root: Path) -> list[dict]:
    """The run's shard records (its journal), verified."""
    return list(RunFolder(root).records())


def read_run(root: Path) -> dict:
    out = {}
    for entry in records(root):
        name = f"{entry['index']:08d}"
        out[name] = (
            pq.read_table(root / "metadata" / f"{name}.parquet").to_pydict(),
            np.load(root / "text_emb" / f"{name}.npy").tobytes(),
            np.load(root / "image_emb" / f"{name}.npy").tobytes(),
            (root / "instructions" / f"{name}.jsonl").read_text(),
        )
    return out


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clean")
    config = write_config(tmp)
    assert main(["run", str(config), "--out", str(tmp / "run")]) == 0
    return config, tmp / "run"


def test_run_is_valid_and_exports_feed_a_trainer(clean_run, tmp_path):
    _, run = clean_run
    result = validate_run(run)
    assert result["problems"] == [] and result["shards"] == 3 and result["rows"] >= 6
    assert main(["validate", str(run)]) == 0
    assert main(["export", str(run), "--format", "llava", "--out", str(tmp_path / "llava")]) == 0
    conversations = json.loads((tmp_path / "llava" / "llava.json").read_text())
    ids = json.loads((tmp_path / "llava" / "embedding_ids.json").read_text())
    emb = np.load(tmp_path / "llava" / "embeddings.npy")
    assert len(ids) == len(emb) == result["rows"] and {c["image"] for c in conversations} <= set(ids)
    sys.path.insert(0, str(ROOT / "examples"))
    from train_tiny_vlm import main as train

    losses = train([str(tmp_path / "llava"), "--steps", "12"])
    assert np.mean(losses[-3:]) < np.mean(losses[:3])
    assert main(["export", str(run), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    import datasets

    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(ds) == len(conversations) and len(ds[0]["embedding"]) == emb.shape[1]
    assert main(["index", str(run)]) == 0
    import faiss

    index = faiss.read_index(str(run / "index" / "index.faiss"))
    _, nearest = index.search(emb[:3].astype(np.float32), 1)
    assert list(nearest[:, 0]) == [0, 1, 2]


def test_validator_catches_damage(clean_run, tmp_path):
    _, run = clean_run
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    np.save(copy / "image_emb" / "00000001.npy", np.load(copy / "image_emb" / "00000001.npy")[:-1])
    result = validate_run(copy)
    assert any("00000001.npy does not match its checksum" in p for p in result["problems"])
    assert main(["validate", str(copy)]) == 2
    # the journal: a record removed from a finished run, and a record cut short, are both named
    journal = (run / "shards.jsonl").read_bytes()
    shutil.copy(run / "image_emb" / "00000001.npy", copy / "image_emb" / "00000001.npy")
    (copy / "shards.jsonl").write_bytes(journal[: journal.rstrip(b"\n").rfind(b"\n") + 1])
    assert any("finished run recorded 3" in p for p in validate_run(copy)["problems"])
    (copy / "shards.jsonl").write_bytes(journal + journal[:40])
    assert any("cut short by a crash" in p for p in validate_run(copy)["problems"])


def test_report_loads_in_a_real_browser(clean_run):
    _, run = clean_run
    html = (run / "report.html").read_text()
    assert "Counts" in html and "Time per stage" in html and "Diversity" in html and "Sample rows" in html
    pngs = sorted(p.name for p in (run / "report").glob("*.png"))
    assert {"caption_lengths.png", "embeddings_pca.png", "gap_metrics.png"} <= set(pngs)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    dom = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
            "--dump-dom",
            (run / "report.html").as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    assert f'data-images-loaded="{len(pngs)}"' in dom


def test_report_shows_every_provenance_both_writers_and_the_reject_reasons(clean_run):
    """Samples are not just the first rows (all seed rows): every provenance the run kept shows, conversations are
    split by writer, and each counted kind of reject appears with its count and an example."""
    import pyarrow.parquet as pq

    _, run = clean_run
    kept = {p for f in (run / "metadata").glob("*.parquet") for p in pq.read_table(f).column("provenance").to_pylist()}
    md = (run / "report.md").read_text()
    samples = md.split("## Sample rows")[1].split("## Sample conversations")[0]
    assert kept >= {"seed"} and len(kept) >= 2 and all(f"| {p} |" in samples for p in kept)
    conversations = md.split("## Sample conversations")[1].split("## Top reject reasons")[0]
    assert "| programs |" in conversations
    rejects = md.split("## Top reject reasons")[1].split("## Plots")[0]
    counted = {}
    for shard in records(run):
        for key, n in shard["stats"].items():
            if key.startswith("reject:") and n:
                counted[key] = counted.get(key, 0) + n
    assert counted, "a run of the 270M model rejects something"
    for key, n in counted.items():
        _, stage, kind = key.split(":", 2)
        assert f"| {stage} | {kind} | {n} |" in rejects
    assert "higher is better" in md and "lower is better" in md  # the gap columns say their direction


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume_gives_the_clean_rows(clean_run, tmp_path):
    config, clean = clean_run
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "unicorn.cli", "run", str(config), "--out", str(out), "--no-report"]
    rng = random.Random(0)
    for _ in range(3):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(8, 25))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert main(["run", str(config), "--out", str(out)]) == 0
    assert read_run(out) == read_run(clean)
    assert validate_run(out)["problems"] == []


@pytest.mark.parametrize(
    "change, message",
    [
        ({"shard_size: 2": "shard_size: '2'"}, "config key shard_size must be int"),
        ({"shard_size: 2": "shard_sise: 2"}, "unknown config key shard_sise"),
        ({"k: 1,": "k: 1, colour: red,"}, "unknown config key captions.colour"),
        ({"k: 1,": "k: 1, llm: 'gpt:4',"}, "unknown llm schema"),
        ({"embed: {": "embed: {encoder: 'clip:x', "}, "unknown encoder schema"),
        ({"limit: 6": "limit: 0"}, "seeds.limit is out of range"),
    ],
)
def test_bad_configs(change, message, tmp_path, capsys):
    config = write_config(tmp_path, **change)
    assert main(["run", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("unicorn: error:") and message in err


def test_bad_seeds_and_folders(clean_run, tmp_path, capsys):
    missing = write_config(tmp_path, "a.yaml", **{str(ROOT / "seeds" / "world.jsonl"): str(tmp_path / "none.jsonl")})
    assert main(["run", str(missing), "--out", str(tmp_path / "o1")]) == 2
    (tmp_path / "empty.jsonl").write_text("")
    empty = write_config(tmp_path, "b.yaml", **{str(ROOT / "seeds" / "world.jsonl"): str(tmp_path / "empty.jsonl")})
    assert main(["run", str(empty), "--out", str(tmp_path / "o2")]) == 2
    assert "no usable seeds" in capsys.readouterr().err
    config, clean = clean_run
    other = tmp_path / "other"
    shutil.copytree(clean, other)
    before = read_run(other)
    changed = write_config(tmp_path, "c.yaml", **{"limit: 6": "limit: 4"})
    assert main(["run", str(changed), "--out", str(other)]) == 2
    assert "different config" in capsys.readouterr().err and read_run(other) == before
    (tmp_path / "notarun").mkdir()
    (tmp_path / "notarun" / "thesis.tex").write_text("precious")
    assert main(["run", str(config), "--out", str(tmp_path / "notarun")]) == 2
    assert (tmp_path / "notarun" / "thesis.tex").read_text() == "precious"
    with pytest.raises(InputError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_full_disk_keeps_earlier_shards(clean_run, tmp_path, capsys):
    """A small tmpfs stands in for a full disk: the run stops with one line and the shards it finished stay valid."""
    config, clean = clean_run
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        shutil.copy(ROOT / "configs" / "default.yaml", mount / "probe")  # leave little room
        (mount / "probe").unlink()
        code = main(["run", str(config), "--out", str(mount / "run"), "--no-report"])
        err = capsys.readouterr().err
        if code == 0:
            pytest.skip("the run fitted in the small tmpfs")
        assert code == 2 and "earlier shards are intact" in err
        assert all((mount / "run" / f).is_file() for s in records(mount / "run") for f in s["files"])
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)  # lazy: the test process may still hold the cache


def test_relative_paths_are_read_from_the_config_folder(tmp_path, monkeypatch):
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "mine.jsonl").write_text('{"id": "a", "caption": "a red circle"}\n')
    (tmp_path / "cfg" / "run.yaml").write_text("seeds: {source: mine.jsonl}\nembed: {projector: ../proj}\n")
    (tmp_path / "proj").mkdir()
    monkeypatch.chdir(ROOT)
    config = load_config(tmp_path / "cfg" / "run.yaml")
    assert config.seeds.source == str(tmp_path / "cfg" / "mine.jsonl")
    assert config.embed.projector == str(tmp_path / "proj")
    assert load_config(tmp_path / "cfg" / "run.yaml", {"seeds": {"source": "world:4"}}).seeds.source == "world:4"


def test_set_overrides_single_keys_and_bad_ones_are_one_line(tmp_path):
    from unicorn.cli.run import parse_sets

    sets = parse_sets(["captions.k=2", "instruct.llm_share=0.1", "shard_size=4", "captions.judge=true"])
    assert sets == {"captions": {"k": 2, "judge": True}, "instruct": {"llm_share": 0.1}, "shard_size": 4}
    config, base = load_config(None, sets), load_config()
    assert (config.captions.k, config.captions.judge, config.instruct.llm_share, config.shard_size) == (2, True, 0.1, 4)
    assert config.captions.prompt == base.captions.prompt == "world_caption"  # the file's other keys are kept
    with pytest.raises(InputError, match="min_fact_share must be in"):
        load_config(None, parse_sets(["captions.min_fact_share=-1"]))
    for bad, why in (("captions.k", "expected SECTION.KEY=VALUE"), ("=2", "expected SECTION.KEY=VALUE"),
                     ("captions.k=[", "not valid YAML")):  # fmt: skip
        with pytest.raises(InputError, match=why):
            parse_sets([bad])
    out = subprocess.run([sys.executable, "-m", "unicorn.cli", "run", "--set", "captions.kk=2", "--out",
                          str(tmp_path / "x")], capture_output=True, text=True, cwd=ROOT)  # fmt: skip
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "kk" in out.stderr
    assert not (tmp_path / "x").exists()
