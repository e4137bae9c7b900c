"""Bookkeeping that holds at any run size: the journal's crash semantics, names past 99,999 shards, a resume that
trusts only what it can prove, format-1 runs still read, scalable dedup, streamed exports."""

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_pipeline import read_run
from unicorn.captions.dedup import Deduplicator
from unicorn.cli import main
from unicorn.pipeline.storage import RunFolder, shard_files

ROOT = Path(__file__).resolve().parents[1]

# Runs the CLI in a child process that SIGKILLs itself while recording shard AT: "torn" after writing half of the
# journal line (a crash mid-append), "durable" right after the line is fsynced (before the run goes on).
KILLER = """
import os, signal, sys
from unicorn.pipeline import storage
from unicorn.cli import main
when, at = sys.argv[1], int(sys.argv[2])
original = storage.RunFolder.append_record
def append(self, entry, state):
    if entry["index"] == at and when == "torn":
        with open(self.journal_path, "ab") as f:
            f.write(b'{"counters": {}, "files": {"metad')
            f.flush()
            os.fsync(f.fileno())
        os.kill(os.getpid(), signal.SIGKILL)
    record = original(self, entry, state)
    if entry["index"] == at and when == "durable":
        os.kill(os.getpid(), signal.SIGKILL)
    return record
storage.RunFolder.append_record = append
sys.exit(main(sys.argv[3:]))
"""


def seeds_file(tmp_path, n: int = 12) -> Path:
    lines = (ROOT / "seeds" / "world.jsonl").read_text().splitlines()[:n]
    path = tmp_path / "seeds.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def quick_config(tmp_path, seeds: Path, shard_size: int = 3) -> Path:
    path = tmp_path / "quick.yaml"
    path.write_text(
        f"seeds: {{source: {seeds}}}\ncaptions: {{k: 0}}\ninstruct: {{llm_share: 0.0}}\n"
        f"embed: {{projector: {ROOT / 'checkpoints' / 'world-projector'}}}\nshard_size: {shard_size}\n"
    )
    return path


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clean")
    config = quick_config(tmp, seeds_file(tmp))
    assert main(["run", str(config), "--out", str(tmp / "run"), "--no-report"]) == 0
    return config, tmp / "run"


@pytest.mark.parametrize("when", ["torn", "durable"])
def test_a_run_killed_while_recording_a_shard_resumes_to_the_clean_rows(clean, tmp_path, when):
    config, clean_run = clean
    out = tmp_path / "run"
    args = ["run", str(config), "--out", str(out), "--no-report"]
    killed = subprocess.run([sys.executable, "-c", KILLER, when, "2", *args], capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    journal = (out / "shards.jsonl").read_bytes()
    assert journal.count(b"\n") == (3 if when == "durable" else 2) and journal.endswith(b"\n") == (when == "durable")
    assert main(args) == 0
    assert read_run(out) == read_run(clean_run)
    assert (out / "shards.jsonl").read_bytes().count(b"\n") == 4  # the torn line was cut off, its shard made again
    assert main(["validate", str(out)]) == 0


def test_names_sort_past_99999_shards():
    names = [shard_files(i)["metadata"] for i in (0, 9, 99_999, 100_000, 1_000_000, 12_345_678)]
    assert sorted(names) == names
    assert shard_files(7, version=1)["metadata"] == "metadata/00007.parquet"  # format 1 is still read


def test_a_resume_over_changed_seeds_is_refused_naming_the_shard(tmp_path, capsys):
    seeds = seeds_file(tmp_path, 6)
    config, out = quick_config(tmp_path, seeds), tmp_path / "run"
    assert main(["run", str(config), "--out", str(out), "--no-report"]) == 0
    before = read_run(out)
    rows = [json.loads(line) for line in seeds.read_text().splitlines()]
    other = [json.loads(line) for line in (ROOT / "seeds" / "world.jsonl").read_text().splitlines()[20:26]]
    for row, replacement in zip(rows, other, strict=True):  # the same ids, other scenes and captions
        row.update({k: v for k, v in replacement.items() if k != "id"})
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(out), "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("unicorn: error: shard 0 was made from other seed rows")
    assert read_run(out) == before  # nothing re-used, nothing overwritten


def to_format_1(run: Path, old: Path) -> None:
    """A format-1 run folder (one manifest holding every shard's entry, five-digit names) made from a format-2 one,
    as the previous release wrote it."""
    shutil.copytree(run, old)
    manifest = json.loads((old / "manifest.json").read_text())
    entries = []
    for record in RunFolder(run).records():
        files = {}
        for key, rel in shard_files(record["index"]).items():
            if key == "dedup_emb":
                (old / rel).unlink()
                continue
            new = shard_files(record["index"], version=1)[key]
            (old / rel).rename(old / new)
            files[new] = record["files"][rel]
        entries.append(
            {k: v for k, v in record.items() if k not in ("prev", "sha256", "seeds_sha256")} | {"files": files}
        )
    shutil.rmtree(old / "dedup_emb")
    (old / "shards.jsonl").unlink()
    body = {k: v for k, v in manifest.items() if k not in ("sha256", "totals", "journal")}
    body.update(version=1, shards=entries)
    body["sha256"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    (old / "manifest.json").write_text(json.dumps(body, indent=1))


def test_a_format_1_run_is_validated_and_exported_but_not_resumed(clean, tmp_path, capsys):
    config, run = clean
    old = tmp_path / "old"
    to_format_1(run, old)
    assert main(["validate", str(old)]) == 0
    assert main(["export", str(old), "--format", "llava", "--out", str(tmp_path / "a")]) == 0
    assert main(["export", str(run), "--format", "llava", "--out", str(tmp_path / "b")]) == 0
    for name in ("llava.json", "embeddings.npy", "embedding_ids.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    capsys.readouterr()
    assert main(["run", str(config), "--out", str(old), "--no-report"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "format 1" in err and "but not resumed" in err


def test_streamed_exports_equal_the_in_memory_exports(clean, tmp_path):
    import datasets

    _, run = clean
    shards = read_run(run)
    conversations = [json.loads(line) for *_, text in shards.values() for line in text.splitlines()]
    ids = [i for meta, *_ in shards.values() for i in meta["id"]]
    emb = np.concatenate([np.frombuffer(image, np.float16).reshape(len(meta["id"]), -1)
                          for meta, _, image, _ in shards.values()])  # fmt: skip
    assert main(["export", str(run), "--format", "llava", "--out", str(tmp_path / "llava")]) == 0
    out = tmp_path / "llava"
    captions = {i: c for meta, *_ in shards.values() for i, c in zip(meta["id"], meta["caption"], strict=True)}
    with_captions = [{**c, "caption": captions[c["image"]]} for c in conversations]
    assert (out / "llava.json").read_text() == json.dumps(with_captions, ensure_ascii=False)  # byte for byte
    assert [r["caption"] for r in json.loads((out / "pretrain.json").read_text())] == list(captions.values())
    assert (out / "embedding_ids.json").read_text() == json.dumps(ids)
    assert main(["export", str(run), "--format", "llava", "--dtype", "float16", "--out", str(tmp_path / "f16")]) == 0
    stored = np.load(tmp_path / "f16" / "embeddings.npy")
    assert stored.tobytes() == emb.tobytes() and stored.dtype == "f2"
    assert np.array_equal(np.load(out / "embeddings.npy"), emb.astype(np.float32))  # float32 by default
    assert main(["export", str(run), "--format", "hf", "--out", str(tmp_path / "hf")]) == 0
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    by_image = {}
    for c in conversations:
        by_image.setdefault(c["image"], []).append(c)
    expected = [(c["id"] if c else i, i) for i in ids for c in by_image.get(i, [None])]
    assert [(r["id"], r["image_id"]) for r in ds] == expected  # row for row, in order, typed
    assert ds.features["embedding"].feature.dtype == "float32" and len(ds[0]["embedding"]) == emb.shape[1]
    assert not list(tmp_path.glob(".hf.build*"))  # the generator's Arrow cache does not stay behind


def planted(n: int, dups: int, dim: int = 64, seed: int = 0):
    """Random unit vectors (mutual cosines near 0) and `dups` rows that copy an earlier row with noise (cosine
    >= 0.96 to it): the duplicates a dedup must find, and no others above 0.9."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    at = np.sort(rng.choice(np.arange(n // 4, n), dups, replace=False))
    for i in at:
        src = rng.integers(0, i)
        x[i] = x[src] / np.linalg.norm(x[src]) + rng.standard_normal(dim).astype(np.float32) * 0.025
    return x / np.linalg.norm(x, axis=1, keepdims=True), set(at.tolist())


def test_approximate_dedup_finds_every_planted_duplicate_and_invents_none():
    x, dups = planted(12_000, 300)
    dedup = Deduplicator(x.shape[1], 0.9, nlist=256, nprobe=16)  # an IVF after 256 kept rows
    texts = [f"row {i}" for i in range(len(x))]
    decisions = []
    for start in range(0, len(x), 500):
        decisions += dedup.decide(texts[start : start + 500], x[start : start + 500])
    assert dedup.semantic.ivf
    flagged = {i for i, d in enumerate(decisions) if d == "semantic_duplicate"}
    assert dups <= flagged  # every planted duplicate found
    kept = np.array([d is None for d in decisions])
    v = Deduplicator.vectors(x)
    for i in flagged:  # none invented: each flagged row has a kept earlier row at or above the threshold
        assert (v[:i][kept[:i]] @ v[i]).max() >= 0.9
    # a resume: the kept rows of the first half remembered, the second half decided, gives the same decisions
    half = 6_000
    again = Deduplicator(x.shape[1], 0.9, nlist=256, nprobe=16)
    for start in range(0, half, 500):
        keep = [k for k in range(start, start + 500) if decisions[k] is None]
        again.remember([texts[k] for k in keep], x[keep])
    rest = []
    for start in range(half, len(x), 500):
        rest += again.decide(texts[start : start + 500], x[start : start + 500])
    assert rest == decisions[half:]


def test_shard_replies_carry_what_was_paid_for_to_any_later_worker(tmp_path):
    """Each worker's SQLite cache stays on its own disk; the replies it paid for travel with the shard, so a worker
    started later, on another machine, finds them (here: two cache files that never read each other)."""
    from unicorn.llm import Completion, RequestCache
    from unicorn.llm.cache import load_shard_replies, store_shard_replies

    first = RequestCache(tmp_path / "node-a" / "worker.sqlite")
    first.put("k1", Completion("one"))
    first.put("k2", Completion("two"))
    assert store_shard_replies(first, tmp_path / "run", 3, "captions") == 2
    first.put("k3", Completion("three"))  # the same shard, a later call: the file gains it
    assert store_shard_replies(first, tmp_path / "run", 3, "captions") == 1
    later = RequestCache(tmp_path / "node-b" / "worker.sqlite")
    assert later.get_many(["k1"]) == [None]
    assert load_shard_replies(later, tmp_path / "run", 3, "captions") == 3
    assert [c.text for c in later.get_many(["k1", "k2", "k3"])] == ["one", "two", "three"]
    assert load_shard_replies(later, tmp_path / "run", 4, "captions") == 0  # another shard: nothing


def test_the_hash_set_answers_like_a_python_set_across_merges(monkeypatch):
    """U64Set against a plain set (the oracle) with a tiny buffer, so most answers come from the merged array."""
    from unicorn.hashing import U64Set

    monkeypatch.setattr(U64Set, "BUFFER", 7)
    rng = np.random.default_rng(0)
    ours, oracle = U64Set(), set()
    for value in rng.integers(0, 400, 1000):
        text = f"row {value}"
        assert ours.add(text) == (text not in oracle)
        oracle.add(text)
    assert len(ours) == len(oracle)
    assert all((f"row {v}" in ours) == (f"row {v}" in oracle) for v in range(450))
    assert np.all(np.diff(ours.sorted.astype(np.float64)) > 0)  # strictly increasing: sorted, no repeats
    assert ours.nbytes <= 2 * 8 * len(ours) + 8 * U64Set.BUFFER
