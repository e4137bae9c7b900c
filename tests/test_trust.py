"""What a user trusts the tool with: `--restart` removes only what the run's manifest proves is the run's own."""

import json
from pathlib import Path

import pytest

from tests.test_pipeline import read_run
from unicorn.cli import main
from unicorn.errors import InputError
from unicorn.llm import Completion, RequestCache

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("metadata", "text_emb", "image_emb", "instructions", "dedup_emb", "report")
FILES = ("report.md", "report.html", "manifest.json.bak", "shards.jsonl.bak", "cache.sqlite.notes")


def quick_config(tmp_path) -> Path:
    """No LLM: seed rows only, programmatic conversations, real encoders; seconds per run."""
    path = tmp_path / "quick.yaml"
    path.write_text(
        f"seeds: {{source: {ROOT / 'seeds' / 'world.jsonl'}, limit: 4}}\ncaptions: {{k: 0}}\n"
        f"instruct: {{llm_share: 0.0}}\nembed: {{projector: {ROOT / 'checkpoints' / 'world-projector'}}}\n"
        "shard_size: 2\n"
    )
    return path


def plant(root: Path) -> dict[Path, str]:
    """A user's own files under every name the run uses, inside and beside its folders."""
    planted = {}
    for name in NAMES:
        (root / name).mkdir(parents=True, exist_ok=True)
        planted[root / name / "final_report.docx"] = f"the user's {name} notes"
        planted[root / name / "00000000.parquet.mine"] = "not a shard"
    for name in FILES:
        planted[root / name] = f"the user's {name}"
    for path, text in planted.items():
        path.write_text(text)
    return planted


def test_restart_never_deletes_a_folder_that_is_not_a_run(tmp_path, capsys):
    out = tmp_path / "mine"
    planted = plant(out)
    assert main(["run", str(quick_config(tmp_path)), "--out", str(out), "--restart"]) == 2
    assert "holds no unicorn run" in capsys.readouterr().err
    assert all(path.read_text() == text for path, text in planted.items())


def test_restart_removes_only_the_runs_own_files(tmp_path):
    config = quick_config(tmp_path)
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out)]) == 0
    first = read_run(out)
    user = {
        out / "report" / "final_report.docx": "precious",
        out / "metadata" / "notes.txt": "mine",
        out / "thesis.tex": "mine too",
    }
    for path, text in user.items():
        path.write_text(text)
    assert main(["run", str(config), "--out", str(out), "--restart"]) == 0
    assert all(path.read_text() == text for path, text in user.items())
    assert read_run(out) == first  # the same config writes the same rows again


def test_exports_refuse_an_altered_run_and_leave_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", str(quick_config(tmp_path)), "--out", str(out), "--no-report"]) == 0
    text = (out / "instructions" / "00000001.jsonl").read_text()
    (out / "instructions" / "00000001.jsonl").write_text(text.replace("shape", "shaep"))
    capsys.readouterr()  # the run's own progress lines
    for fmt in ("llava", "hf"):
        assert main(["export", str(out), "--format", fmt, "--out", str(tmp_path / fmt)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and "does not match its checksum" in err and "unicorn validate" in err
        assert not (tmp_path / fmt).exists() and not list(tmp_path.glob(f".{fmt}.*"))


def test_hf_export_is_typed_and_loads_without_conversations(tmp_path):
    import datasets

    config = quick_config(tmp_path)
    config.write_text(
        config.read_text().replace("instruct: {llm_share: 0.0}", "instruct: {llm_share: 0.0, programs: false}")
    )
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--no-report"]) == 0
    assert main(["export", str(out), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert len(ds) == 4 and all(row["conversations"] == [] for row in ds)  # caption-only pretraining rows
    assert ds.features["embedding"].length == 256 and ds.features["embedding"].feature.dtype == "float32"
    assert ds.features["conversations"].feature["from"].dtype == "string"
    assert main(["export", str(out), "--format", "hf", "--out", str(tmp_path / "hf2"), "--drop-caption-only"]) == 0
    assert len(datasets.load_from_disk(str(tmp_path / "hf2"))) == 0
    assert main(["export", str(out), "--format", "hf", "--out", str(tmp_path / "hf")]) == 2  # not over an export


def test_resume_detects_a_truncated_shard_and_an_edited_manifest(tmp_path, capsys):
    config, out = quick_config(tmp_path), tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--no-report"]) == 0
    shard = out / "metadata" / "00000001.parquet"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(out), "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "shard 1: metadata/00000001.parquet is missing or does not match its checksum" in err
    assert shard.read_bytes() == data[: len(data) // 2]  # nothing re-used, nothing overwritten
    shard.write_bytes(data)
    journal = (out / "shards.jsonl").read_text()
    first = json.loads(journal.splitlines()[0])
    first["rows"] += 1
    (out / "shards.jsonl").write_text(json.dumps(first, sort_keys=True) + "\n" + journal.split("\n", 1)[1])
    assert main(["run", str(config), "--out", str(out), "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "shards.jsonl line 1 was edited or damaged" in err
    (out / "shards.jsonl").write_text(journal)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["config"]["seed"] += 1
    (out / "manifest.json").write_text(json.dumps(manifest))
    assert main(["run", str(config), "--out", str(out), "--no-report"]) == 2
    assert "was edited after the run wrote it" in capsys.readouterr().err


def test_a_corrupt_or_truncated_request_cache_is_one_clear_error(tmp_path):
    good = tmp_path / "cache.sqlite"
    cache = RequestCache(good)
    for k in range(200):
        cache.put(f"key{k}", Completion("a reply " * 20))
    cache.close()
    data = good.read_bytes()
    for name, content in (("garbage.sqlite", b"not a database at all" * 100), ("half.sqlite", data[: len(data) // 2])):
        (tmp_path / name).write_bytes(content)
        with pytest.raises(InputError, match="is corrupt .*move it away and run again"):
            RequestCache(tmp_path / name).get_many(["key1"])


def test_threads_is_a_config_option_that_never_changes_the_checksum(tmp_path):
    from unicorn.llm.llamacpp import usable_cpus
    from unicorn.pipeline.config import load_config

    base = load_config()
    assert base.threads is None and usable_cpus() == len(__import__("os").sched_getaffinity(0))
    one = load_config(overrides={"threads": 1})
    assert one.threads == 1 and one.sha256() == base.sha256()  # speed, not replies: a resume is still a resume
    with pytest.raises(InputError, match="config key threads is out of range"):
        load_config(overrides={"threads": 0})


def test_threads_follow_the_load_a_model_sees_when_it_loads():
    """Idle: every CPU, spinning waits; busy: passive waits on the CPUs the others leave free, never fewer than one."""
    from unicorn.llm.llamacpp import machine_load, threads_for_load

    assert threads_for_load(16, 0.0) == (16, False) and threads_for_load(16, 0.49) == (16, False)
    assert threads_for_load(16, 0.5) == (8, True) and threads_for_load(16, 0.75) == (4, True)
    assert threads_for_load(2, 1.0) == (1, True) and threads_for_load(1, 0.9) == (1, True)
    assert 0.0 <= machine_load(0.05) <= 1.0
