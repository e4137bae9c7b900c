"""Sharded run folders in the clip-retrieval layout, with a manifest that makes runs resumable.

Per shard: `metadata/NNNNN.parquet`, `text_emb/NNNNN.npy`, `image_emb/NNNNN.npy` (float16, L2-normalised,
same row order) and `instructions/NNNNN.jsonl`. Each file is written under a temporary name and renamed
when complete; a shard counts as done only once `manifest.json` (rewritten atomically) records its row
count and every file's SHA-256. So a killed run leaves complete shards or nothing, never half a shard.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from modality_transfer.io import atomic_path, sha256_file

from ..errors import InputError
from .shard import ShardResult

FORMAT = "unicorn-run"
VERSION = 1
MANIFEST = "manifest.json"
FOLDERS = ("metadata", "text_emb", "image_emb", "instructions")
# what `unicorn run` writes besides shards (pipeline/report.py); a restart removes these names and nothing else
REPORT_FILES = (
    "report.html",
    "report.md",
    "report/caption_lengths.png",
    "report/embeddings_pca.png",
    "report/gap_metrics.png",
)


def shard_files(index: int) -> dict[str, str]:
    name = f"{index:05d}"
    return {
        "metadata": f"metadata/{name}.parquet",
        "text_emb": f"text_emb/{name}.npy",
        "image_emb": f"image_emb/{name}.npy",
        "instructions": f"instructions/{name}.jsonl",
    }


def _atomic(path: Path, write) -> None:
    try:
        with atomic_path(path) as tmp:
            write(tmp)
    except OSError as e:
        raise InputError(
            f"could not write {path} ({e.strerror or e}); earlier shards are intact, run again to resume"
        ) from None


class RunFolder:
    """A run's output folder: its manifest and shards."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def read_manifest(self) -> dict | None:
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
        recorded = manifest.pop("sha256", None)
        if recorded is not None and recorded != _manifest_sha(manifest):
            raise InputError(
                f"{self.manifest_path} was edited after the run wrote it (its checksum does not match); "
                "restore it, or move the folder away and run again"
            )
        return manifest

    def check_shards(self, manifest: dict) -> None:
        """Refuse to resume over a recorded shard whose files are missing, truncated or altered."""
        for entry in manifest["shards"]:
            for rel, sha in entry["files"].items():
                path = self.root / rel
                if not path.is_file() or sha256_file(path) != sha:
                    raise InputError(
                        f"shard {entry['index']}: {rel} is missing or does not match its checksum (truncated or "
                        f"altered); see `unicorn validate {self.root}`, restore the file, or run into another folder"
                    )

    def open(self, config: dict, config_sha: str, *, restart: bool) -> dict:
        """The manifest to continue from: a fresh one, or the existing one if it is this config's run.

        A non-empty folder without a manifest is never touched, `restart` or not. Restarting removes only what the
        manifest proves is the run's own (its shard files, by name and checksum) and the report files this project
        writes; a user's file that happens to share a folder name with ours survives."""
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
        if manifest is not None:
            self.check_shards(manifest)  # a resume re-uses these shards, so they must be exactly what was written
        if manifest is None:
            manifest = {
                "format": FORMAT,
                "version": VERSION,
                "config_sha256": config_sha,
                "config": config,
                "shards": [],
                "complete": False,
            }
        for folder in FOLDERS:
            try:
                (self.root / folder).mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise InputError(f"cannot create {self.root / folder}: {e.strerror}") from None
        self.write_manifest(manifest)
        return manifest

    def _remove_run(self, manifest: dict) -> None:
        for entry in manifest["shards"]:
            for rel, sha in entry.get("files", {}).items():
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
        self.manifest_path.unlink(missing_ok=True)

    def write_manifest(self, manifest: dict) -> None:
        """Atomically, with a checksum of its own content, so a hand-edited manifest is caught on the next read."""
        signed = {**manifest, "sha256": _manifest_sha(manifest)}
        _atomic(self.manifest_path, lambda p: p.write_text(json.dumps(signed, indent=1)))

    def write_shard(self, result: ShardResult) -> dict:
        """Write one shard's four files; returns its manifest entry (rows, checksums, counts, seconds).

        Safe to call from a worker process: it writes only this shard's files, each under a temporary name, and
        never the manifest, which the one driver process records."""
        start = time.perf_counter()
        index = result.index
        files = shard_files(index)
        if not (len(result.text_emb) == len(result.image_emb) == result.rows):
            raise InputError(
                f"shard {index}: {result.rows} rows but {len(result.text_emb)} text and "
                f"{len(result.image_emb)} image embeddings"
            )
        paths = {k: self.root / v for k, v in files.items()}
        _atomic(paths["metadata"], lambda p: pq.write_table(pa.table(result.metadata), p))
        _atomic(paths["text_emb"], lambda p: _save_npy(p, result.text_emb))
        _atomic(paths["image_emb"], lambda p: _save_npy(p, result.image_emb))
        _atomic(
            paths["instructions"],
            lambda p: p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in result.instructions)),
        )
        seconds = {**result.seconds, "write": time.perf_counter() - start}
        seconds["total"] = sum(seconds.values())
        return {
            "index": index,
            "rows": result.rows,
            "instructions": len(result.instructions),
            "files": {v: sha256_file(paths[k]) for k, v in files.items()},
            "stats": result.stats,
            "seconds": {k: round(v, 4) for k, v in seconds.items()},
            "counters": {k: round(v, 4) for k, v in result.counters.items()},
            "rejects": result.rejects,
        }

    def read_shard(self, index: int) -> tuple[dict[str, list], np.ndarray, np.ndarray, list[dict]]:
        files = {k: self.root / v for k, v in shard_files(index).items()}
        metadata = pq.read_table(files["metadata"]).to_pydict()
        instructions = [json.loads(line) for line in files["instructions"].read_text().splitlines() if line.strip()]
        return metadata, np.load(files["text_emb"]), np.load(files["image_emb"]), instructions


def _save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as f:
        np.save(f, np.ascontiguousarray(array, dtype=np.float16))
        f.flush()
        os.fsync(f.fileno())


def _manifest_sha(manifest: dict) -> str:
    body = {k: v for k, v in manifest.items() if k != "sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def manifest_totals(manifest: dict) -> tuple[Counter, Counter, Counter]:
    """(stats, seconds, counters) summed over a manifest's shards."""
    stats, seconds, counters = Counter(), Counter(), Counter()
    for shard in manifest["shards"]:
        stats.update(shard.get("stats", {}))
        seconds.update(shard.get("seconds", {}))
        counters.update(shard.get("counters", {}))
    return stats, seconds, counters


def iter_shards(root: str | os.PathLike):
    """(metadata, text_emb, image_emb, instructions) per shard of a complete run, in order."""
    folder = RunFolder(root)
    manifest = folder.read_manifest()
    if manifest is None:
        raise InputError(f"{root} is not a unicorn run (no manifest.json)")
    if not manifest.get("complete"):
        raise InputError(f"{root} is not complete; finish the run before exporting")
    for entry in sorted(manifest["shards"], key=lambda s: s["index"]):
        yield folder.read_shard(entry["index"])
