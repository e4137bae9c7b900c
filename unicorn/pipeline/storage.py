"""Sharded run folders in the clip-retrieval layout, with a journal that makes runs resumable at any size.

Per shard: `metadata/NNNNNNNN.parquet`, `text_emb/NNNNNNNN.npy`, `image_emb/NNNNNNNN.npy` (float16,
L2-normalised, same row order), `instructions/NNNNNNNN.jsonl` and `dedup_emb/NNNNNNNN.npy` (the dedup step's
float16 vectors of the kept rows, so a resume rebuilds its state by reading, not re-encoding). Names have eight
digits, so they sort in shard order up to 100 million shards.

Two files record the run, and neither is ever rewritten whole per shard:

- `manifest.json`: the header (format, version, config and its checksum; at the end, the run's totals and the
  checksum of the last journal record). Written at open and at completion only, atomically, fsynced with its folder.
- `shards.jsonl`: the journal, one line appended per finished shard (rows, file checksums, a hash of the seed rows
  it was made from, stats, seconds, reject examples). Each line carries the SHA-256 of its own content and that of
  the line before it (the first line: of the config), so an edited, removed or reordered line breaks the chain.
  Recording a shard costs one append and one fsync, the same at shard 10 and at shard 10 million.

What happens on a crash: every shard file is written under a temporary name, fsynced and renamed, and its folder
fsynced; only then is its journal line appended and fsynced. A shard counts as done once its line is complete. So
a run killed at any point (SIGKILL, or a machine that loses power) leaves complete shards or none: a shard whose
line never landed is made again (its files are replaced by rename); a line torn by the crash (no newline at the
end of the file) is cut off on resume and its shard made again. A complete line that fails its checksum or its
chain is an edit, never a crash, and stops the resume with one line.

Run format 1 (one manifest.json holding every shard's entry, rewritten per shard, five-digit names) is still
read by `validate`, `export`, `index` and the report; resuming one is refused with one line.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import time
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from modality_transfer.io import atomic_path, sha256_file

from ..errors import InputError
from .shard import ShardResult

FORMAT = "unicorn-run"
VERSION = 2
READABLE = (1, 2)
MANIFEST = "manifest.json"
JOURNAL = "shards.jsonl"
FOLDERS = ("metadata", "text_emb", "image_emb", "instructions", "dedup_emb")
RESUME_CHECK_LAST, RESUME_CHECK_SAMPLE = 4, 16  # shards whose files a resume re-hashes (validate hashes all)
# what `unicorn run` writes besides shards (pipeline/report.py); a restart removes these names and nothing else
REPORT_FILES = (
    "report.html",
    "report.md",
    "report/caption_lengths.png",
    "report/embeddings_pca.png",
    "report/gap_metrics.png",
)


def shard_files(index: int, version: int = VERSION) -> dict[str, str]:
    """A shard's files, relative to the run folder (format 1: five-digit names, no dedup vectors)."""
    name = f"{index:05d}" if version == 1 else f"{index:08d}"
    files = {
        "metadata": f"metadata/{name}.parquet",
        "text_emb": f"text_emb/{name}.npy",
        "image_emb": f"image_emb/{name}.npy",
        "instructions": f"instructions/{name}.jsonl",
    }
    if version != 1:
        files["dedup_emb"] = f"dedup_emb/{name}.npy"
    return files


def seeds_sha256(seeds: list[dict]) -> str:
    """The hash of a shard's seed rows, as recorded with it: a resume over a changed seed file is refused."""
    return hashlib.sha256(json.dumps(seeds, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic(path: Path, write) -> None:
    """Write through a temporary name, fsync it, rename it into place (the caller fsyncs the folder)."""
    try:
        with atomic_path(path) as tmp:
            write(tmp)
            _fsync_path(tmp)
    except OSError as e:
        raise InputError(
            f"could not write {path} ({e.strerror or e}); earlier shards are intact, run again to resume"
        ) from None


def _record_sha(record: dict) -> str:
    body = {k: v for k, v in record.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _manifest_sha(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class _Growing:
    """A numpy array indexed by shard, grown by doubling: per-shard facts in a few bytes each, not a list."""

    def __init__(self, dtype) -> None:
        self.data = np.zeros(1024, dtype)

    def __setitem__(self, index: int, value) -> None:
        if index >= len(self.data):
            self.data = np.concatenate([self.data, np.zeros(max(index + 1, 2 * len(self.data)) - len(self.data),
                                                            self.data.dtype)])  # fmt: skip
        self.data[index] = value

    def __getitem__(self, index: int):
        return self.data[index] if index < len(self.data) else self.data.dtype.type(0)


@dataclass
class RunState:
    """What the journal says is done, in a few bytes per shard: read in one streaming pass."""

    records: int = 0
    rows: int = 0
    instructions: int = 0
    last_sha: str = ""
    stats: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)
    counters: Counter = field(default_factory=Counter)
    _done: _Growing = field(default_factory=lambda: _Growing(np.bool_))
    _seed_hash: _Growing = field(default_factory=lambda: _Growing(np.uint64))
    max_index: int = -1

    def add(self, record: dict) -> None:
        index = record["index"]
        self.records += 1
        self.rows += record["rows"]
        self.instructions += record.get("instructions", 0)
        self.stats.update(record.get("stats", {}))
        self.seconds.update(record.get("seconds", {}))
        self.counters.update(record.get("counters", {}))
        self._done[index] = True
        if record.get("seeds_sha256"):
            self._seed_hash[index] = int(record["seeds_sha256"][:16], 16)
        self.max_index = max(self.max_index, index)
        self.last_sha = record.get("sha256", "")

    def done(self, index: int) -> bool:
        return bool(self._done[index])

    def seeds_match(self, index: int, seeds: list[dict]) -> bool:
        recorded = int(self._seed_hash[index])
        return recorded == 0 or recorded == int(seeds_sha256(seeds)[:16], 16)

    def done_indices(self) -> Iterator[int]:
        return (int(i) for i in np.flatnonzero(self._done.data))

    def totals(self) -> dict:
        return {
            "shards": self.records,
            "rows": self.rows,
            "instructions": self.instructions,
            "stats": dict(self.stats),
            "seconds": {k: round(v, 4) for k, v in self.seconds.items()},
            "counters": {k: round(v, 4) for k, v in self.counters.items()},
        }


class RunFolder:
    """A run's output folder: its manifest (header), its journal of shard records, and its shards."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self._journal = None  # the open journal file while this process records shards
        self._chain = ""  # what the journal's first line follows: the run's config checksum
        self.version = VERSION

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def journal_path(self) -> Path:
        return self.root / JOURNAL

    # -- reading ---------------------------------------------------------------------------------------------------

    def read_manifest(self) -> dict | None:
        """The verified header, or None where there is no run. A format-1 manifest keeps its `shards` list."""
        if not self.manifest_path.is_file():
            return None
        try:
            manifest = json.loads(self.manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise InputError(
                f"{self.manifest_path} is corrupt, so nothing in {self.root} can be trusted as this run's; "
                "move the folder away and run again"
            ) from None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
            raise InputError(f"{self.root} holds something other than a unicorn run (format {found!r})")
        if manifest.get("version") not in READABLE:
            raise InputError(
                f"{self.root} is run format {manifest.get('version')!r}; this unicorn reads formats "
                f"{', '.join(map(str, READABLE))}: use the unicorn that wrote it"
            )
        recorded = manifest.pop("sha256", None)
        if recorded is not None and recorded != _manifest_sha(manifest):
            raise InputError(
                f"{self.manifest_path} was edited after the run wrote it (its checksum does not match); "
                "restore it, or move the folder away and run again"
            )
        self.version, self._chain = manifest["version"], manifest["config_sha256"]
        return manifest

    def records(self, manifest: dict | None = None, *, torn: list | None = None) -> Iterator[dict]:
        """The shard records, verified, in the order they were recorded; streamed (format 2) so memory stays flat.

        A line torn by a crash (the file's tail after its last newline) ends the stream; its size is appended to
        `torn` when given. A complete line that fails its checksum or its chain raises InputError."""
        manifest = manifest if manifest is not None else self.read_manifest()
        if manifest is None:
            return
        if manifest.get("version") == 1:
            yield from manifest.get("shards", [])
            return
        if not self.journal_path.is_file():
            return
        prev = manifest["config_sha256"]
        with self.journal_path.open("rb") as f:
            for n, line in enumerate(f, 1):
                if not line.endswith(b"\n"):
                    if torn is not None:
                        torn.append(len(line))
                    return
                try:
                    record = json.loads(line)
                    ok = isinstance(record, dict) and record.get("sha256") == _record_sha(record)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    ok = False
                if not ok:
                    raise InputError(
                        f"{self.journal_path} line {n} was edited or damaged after the run wrote it (its checksum "
                        "does not match); restore it, or move the folder away and run again"
                    )
                if record.get("prev") != prev:
                    raise InputError(
                        f"{self.journal_path} line {n} does not follow the line before it (a line was removed, "
                        "reordered or copied from another run); restore it, or move the folder away and run again"
                    )
                prev = record["sha256"]
                yield record

    def state(self, manifest: dict | None = None, *, each=None, torn: list | None = None) -> RunState:
        """What is done, read in one pass over the journal (a few bytes per shard kept); `each(record)` is called
        for every verified record, `torn` collects a crash's cut-short tail (see `records`)."""
        manifest = manifest if manifest is not None else self.read_manifest()
        state = RunState()
        for record in self.records(manifest, torn=torn):
            if state.done(record["index"]):
                raise InputError(f"{self.journal_path}: shard {record['index']} is recorded twice")
            state.add(record)
            if each is not None:
                each(record)
        return state

    def shard_paths(self, index: int) -> dict[str, Path]:
        return {k: self.root / v for k, v in shard_files(index, self.version).items()}

    def check_shard(self, record: dict) -> None:
        for rel, sha in record["files"].items():
            path = self.root / rel
            if not path.is_file() or sha256_file(path) != sha:
                raise InputError(
                    f"shard {record['index']}: {rel} is missing or does not match its checksum (truncated or "
                    f"altered); see `unicorn validate {self.root}`, restore the file, or run into another folder"
                )

    # -- opening, recording, finishing ---------------------------------------------------------------------------

    def open(self, config: dict, config_sha: str, *, restart: bool) -> tuple[dict, RunState]:
        """The manifest and journal state to continue from: a fresh run, or this config's run.

        A non-empty folder without a manifest is never touched, `restart` or not. Restarting removes only what the
        journal proves is the run's own (its shard files, by name and checksum) and the report files this project
        writes; a user's file that happens to share a folder name with ours survives. A resume re-hashes the files
        of the last few recorded shards and a seeded sample of the others (a bounded check; `validate` checks all)."""
        manifest = self.read_manifest()
        if manifest is None and self.root.is_dir() and any(self.root.iterdir()):
            raise InputError(f"output folder {self.root} is not empty and holds no unicorn run; choose another")
        if manifest is not None and manifest["config_sha256"] != config_sha and not restart:
            raise InputError(
                f"{self.root} holds a run of a different config; pass --restart to start over, or choose another --out"
            )
        if manifest is not None and (restart or manifest["config_sha256"] != config_sha):
            self._remove_run(manifest)
            manifest = None
        if manifest is not None and manifest["version"] != VERSION:
            raise InputError(
                f"{self.root} is a run of format {manifest['version']} (this unicorn writes {VERSION}); it can still "
                "be validated and exported, but not resumed: run into another folder, or pass --restart"
            )
        state = RunState()
        if manifest is not None:
            state = self._resume_state(manifest)
        if manifest is None:
            manifest = {"format": FORMAT, "version": VERSION, "config_sha256": config_sha, "config": config}
        manifest["complete"] = False
        for stale in ("totals", "journal"):
            manifest.pop(stale, None)
        self.version, self._chain = VERSION, config_sha
        for folder in FOLDERS:
            try:
                (self.root / folder).mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise InputError(f"cannot create {self.root / folder}: {e.strerror}") from None
        self.write_manifest(manifest)
        return manifest, state

    def _resume_state(self, manifest: dict) -> RunState:
        torn, last = [], deque(maxlen=RESUME_CHECK_LAST)
        rng, sample, seen = random.Random(manifest["config_sha256"]), [], 0

        def each(record: dict) -> None:
            # the last few records, and a reservoir sample of all: the same shards on every resume of this run
            nonlocal seen
            seen += 1
            last.append(record)
            if len(sample) < RESUME_CHECK_SAMPLE:
                sample.append(record)
            else:
                j = rng.randrange(seen)
                if j < RESUME_CHECK_SAMPLE:
                    sample[j] = record

        state = self.state(manifest, each=each, torn=torn)
        for record in {r["index"]: r for r in (*sample, *last)}.values():
            self.check_shard(record)
        if torn:  # the crash's half-written line: its shard is made again
            with self.journal_path.open("rb+") as f:
                f.truncate(self.journal_path.stat().st_size - torn[0])
                f.flush()
                os.fsync(f.fileno())
        return state

    def _remove_run(self, manifest: dict) -> None:
        try:
            for _ in self.records(manifest):  # a first pass checks the whole chain: an edited journal proves nothing
                pass
            records = self.records(manifest)  # the second removes, streamed
        except InputError:
            records = iter(())  # so no shard file is removed
        for record in records:
            for rel, sha in record.get("files", {}).items():
                path = self.root / rel
                if path.is_file() and sha256_file(path) == sha:  # ours, unaltered
                    path.unlink()
        for rel in REPORT_FILES:
            (self.root / rel).unlink(missing_ok=True)
        for folder in (*FOLDERS, "report"):
            try:
                (self.root / folder).rmdir()  # only when empty: anything left in it is not ours to delete
            except OSError:
                pass
        self.journal_path.unlink(missing_ok=True)
        self.manifest_path.unlink(missing_ok=True)

    def write_manifest(self, manifest: dict) -> None:
        """Atomically and durably, with a checksum of its own content, so a hand-edited manifest is caught."""
        signed = {**manifest, "sha256": _manifest_sha(manifest)}
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create {self.root}: {e.strerror}") from None
        _atomic(self.manifest_path, lambda p: p.write_text(json.dumps(signed, indent=1)))
        _fsync_path(self.root)

    def append_record(self, entry: dict, state: RunState) -> dict:
        """Record a finished shard: one line appended to the journal and fsynced. From here on the shard is done."""
        record = {**entry, "prev": state.last_sha or self._chain}
        record["sha256"] = _record_sha(record)
        line = (json.dumps(record, sort_keys=True) + "\n").encode()
        try:
            if self._journal is None:
                new = not self.journal_path.exists()
                self._journal = open(self.journal_path, "ab")
                if new:
                    _fsync_path(self.root)  # the journal's own name must survive a power loss too
            self._journal.write(line)
            self._journal.flush()
            os.fsync(self._journal.fileno())
        except OSError as e:
            raise InputError(
                f"could not record shard {entry['index']} in {self.journal_path} ({e.strerror or e}); earlier "
                "shards are intact, run again to resume"
            ) from None
        state.add(record)
        return record

    def finish(self, manifest: dict, state: RunState, **extra) -> dict:
        """Mark the run complete: the header gains the totals and pins the journal (record count, last checksum)."""
        self.close()
        pinned = {"records": state.records, "last_sha256": state.last_sha}
        manifest.update(complete=True, totals=state.totals(), journal=pinned, **extra)
        self.write_manifest(manifest)
        return manifest

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # -- shards ------------------------------------------------------------------------------------------------------

    def write_shard(self, result: ShardResult) -> dict:
        """Write one shard's files; returns its record (rows, checksums, counts, seconds; the driver adds the hash
        of its seed rows).

        Safe to call from a worker process: it writes only this shard's files, each under a temporary name,
        fsynced, and never the journal, which the one driver process appends to."""
        start = time.perf_counter()
        index = result.index
        if not (len(result.text_emb) == len(result.image_emb) == result.rows):
            raise InputError(
                f"shard {index}: {result.rows} rows but {len(result.text_emb)} text and "
                f"{len(result.image_emb)} image embeddings"
            )
        paths = self.shard_paths(index)
        _atomic(paths["metadata"], lambda p: pq.write_table(pa.table(result.metadata), p))
        _atomic(paths["text_emb"], lambda p: _save_npy(p, result.text_emb))
        _atomic(paths["image_emb"], lambda p: _save_npy(p, result.image_emb))
        dedup = result.dedup_emb if result.dedup_emb is not None else np.zeros((result.rows, 0), np.float16)
        _atomic(paths["dedup_emb"], lambda p: _save_npy(p, dedup))
        _atomic(
            paths["instructions"],
            lambda p: p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.instructions)),
        )
        for folder in {p.parent for p in paths.values()}:
            _fsync_path(folder)  # the renames themselves must survive a power loss before the shard is recorded
        seconds = {**result.seconds, "write": time.perf_counter() - start}
        seconds["total"] = sum(seconds.values())
        return {
            "index": index,
            "rows": result.rows,
            "instructions": len(result.instructions),
            "files": {str(p.relative_to(self.root)): sha256_file(p) for p in paths.values()},
            "stats": result.stats,
            "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "counters": {k: round(v, 4) for k, v in result.counters.items()},
            "rejects": result.rejects,
        }

    def read_shard(self, index: int) -> ShardData:
        files = self.shard_paths(index)
        try:
            metadata = pq.read_table(files["metadata"]).to_pydict()
            text = files["instructions"].read_text()
            data = ShardData(index, metadata, np.load(files["text_emb"]), np.load(files["image_emb"]),
                             [json.loads(line) for line in text.splitlines() if line.strip()])  # fmt: skip
        except FileNotFoundError as e:
            raise InputError(
                f"shard {index}: {Path(e.filename).relative_to(self.root)} is missing; "
                f"see `unicorn validate {self.root}`"
            ) from None
        return data

    def read_dedup(self, index: int) -> np.ndarray | None:
        """The dedup vectors of a shard's kept rows (format 2), or None (format 1: re-encode the captions)."""
        path = self.shard_paths(index).get("dedup_emb")
        if path is None or not path.is_file():
            return None
        array = np.load(path, allow_pickle=False)
        return array if array.shape[1] else None


@dataclass
class ShardData:
    """One written shard, read back."""

    index: int
    metadata: dict[str, list]
    text_emb: np.ndarray
    image_emb: np.ndarray
    instructions: list[dict]

    def __iter__(self):  # (metadata, text_emb, image_emb, instructions), as callers unpack it
        return iter((self.metadata, self.text_emb, self.image_emb, self.instructions))


def _save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as f:
        np.save(f, np.ascontiguousarray(array, dtype=np.float16))


def run_totals(root: str | os.PathLike) -> tuple[dict, dict]:
    """(manifest, totals) of a run: the totals recorded at completion, or summed over the journal in one pass."""
    folder = RunFolder(root)
    manifest = folder.read_manifest()
    if manifest is None:
        raise InputError(f"{root} is not a unicorn run (no manifest.json)")
    if manifest.get("totals"):
        return manifest, manifest["totals"]
    return manifest, folder.state(manifest).totals()


def iter_shards(root: str | os.PathLike) -> Iterator[ShardData]:
    """Each shard of a complete run, in index order, one at a time (flat memory)."""
    folder = RunFolder(root)
    manifest = folder.read_manifest()
    if manifest is None:
        raise InputError(f"{root} is not a unicorn run (no manifest.json)")
    if not manifest.get("complete"):
        raise InputError(f"{root} is not complete; finish the run before exporting")
    state = folder.state(manifest)
    for index in state.done_indices():
        yield folder.read_shard(index)
