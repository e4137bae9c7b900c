"""`validate_run`: is a run folder whole and consistent? Shard counts, checksums, row alignment between
files, embedding norms and the conversation format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from modality_transfer.io import sha256_file

from ..errors import InputError
from ..instruct.conversations import conversation_error
from .storage import RunFolder, shard_files


def validate_run(root: str | Path, *, max_problems: int = 20) -> dict:
    """Counts of what was checked and a list of problems (empty when the run is valid). Every shard's files are
    hashed and read, one shard at a time (flat memory); the journal is checked line by line against its chain
    and, for a complete run, against the count and last checksum its manifest pinned."""
    folder = RunFolder(root)
    manifest = folder.read_manifest()
    if manifest is None:
        raise InputError(f"{root} has no {folder.manifest_path.name}; not a unicorn run")
    problems: list[str] = []
    rows = instructions = shards = 0
    torn: list[int] = []
    seen = np.zeros(0, bool)
    last_sha = ""
    try:
        for entry in folder.records(manifest, torn=torn):
            shards += 1
            last_sha = entry.get("sha256", "")
            i = entry["index"]
            if i >= len(seen):
                seen = np.concatenate([seen, np.zeros(max(i + 1, 2 * len(seen)) - len(seen), bool)])
            if seen[i]:
                problems.append(f"shard {i} is recorded twice")
            seen[i] = True
            n, k = _check_shard(folder, entry, problems)
            rows, instructions = rows + n, instructions + k
    except InputError as e:
        problems.append(str(e))
    if torn:
        problems.append(f"{folder.journal_path.name} ends in a record cut short by a crash ({torn[0]} bytes); "
                        "resume the run with the same command")  # fmt: skip
    if shards and not seen[:shards].all() or seen[shards:].any():
        problems.append(f"shard indices are not 0..{shards - 1}")
    if not manifest.get("complete"):
        problems.append("the run is not complete (resume it with the same command)")
    elif manifest["version"] >= 2:
        pinned = manifest.get("journal", {})
        if pinned.get("records") != shards or pinned.get("last_sha256") != last_sha:
            problems.append(
                f"{folder.journal_path.name} holds {shards} records but the finished run recorded "
                f"{pinned.get('records')} (records were removed or added after it finished)"
            )
    return {
        "format": manifest["version"],
        "shards": shards,
        "rows": rows,
        "instructions": instructions,
        "problems": problems[:max_problems],
        "problem_count": len(problems),
    }


def _check_shard(folder: RunFolder, entry: dict, problems: list[str]) -> tuple[int, int]:
    """Check one recorded shard's files; returns (rows, instructions) read."""
    i = entry["index"]
    files = shard_files(i, folder.version)
    before = len(problems)
    for rel in files.values():
        path = folder.root / rel
        if not path.is_file():
            problems.append(f"shard {i}: {rel} is missing")
        elif sha256_file(path) != entry["files"].get(rel):
            problems.append(f"shard {i}: {rel} does not match its checksum")
    if len(problems) > before:
        return 0, 0
    meta = pq.read_table(folder.root / files["metadata"]).to_pydict()
    text, image = np.load(folder.root / files["text_emb"]), np.load(folder.root / files["image_emb"])
    n = len(meta["id"])
    if not (n == len(text) == len(image) == entry["rows"]):
        problems.append(
            f"shard {i}: {n} metadata rows, {len(text)} text and {len(image)} image embeddings, "
            f"the record says {entry['rows']}"
        )
    if text.dtype != np.float16 or image.dtype != np.float16 or text.shape[1:] != image.shape[1:]:
        problems.append(f"shard {i}: embeddings must be float16 of one width, got {text.dtype} {image.dtype}")
    for name, emb in (("text", text), ("image", image)):
        norms = np.linalg.norm(emb.astype(np.float32), axis=1)
        if len(norms) and (not np.isfinite(norms).all() or np.abs(norms - 1).max() > 1e-2):
            problems.append(f"shard {i}: {name} embeddings are not unit norm (max error {np.abs(norms - 1).max():.3g})")
    if "dedup_emb" in files and len(np.load(folder.root / files["dedup_emb"])) != n:
        problems.append(f"shard {i}: dedup vectors do not match its rows")
    if len(set(meta["id"])) != n:
        problems.append(f"shard {i}: duplicate row ids")
    ids = set(meta["id"])
    k = 0
    for line_no, line in enumerate((folder.root / files["instructions"]).read_text().splitlines(), 1):
        row = json.loads(line)
        error = conversation_error(row)
        if error:
            problems.append(f"shard {i}: instruction line {line_no}: {error}")
        elif row.get("image") not in ids:
            problems.append(f"shard {i}: instruction line {line_no} refers to unknown row {row.get('image')!r}")
        k += 1
    return n, k
