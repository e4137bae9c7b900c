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
    """Counts of what was checked and a list of problems (empty when the run is valid)."""
    folder = RunFolder(root)
    manifest = folder.read_manifest()
    if manifest is None:
        raise InputError(f"{root} has no {folder.manifest_path.name}; not a unicorn run")
    problems: list[str] = []
    rows = instructions = 0
    indices = [s["index"] for s in manifest["shards"]]
    if sorted(indices) != list(range(len(indices))):
        problems.append(f"shard indices are not 0..{len(indices) - 1}: {sorted(indices)[:10]}")
    if not manifest.get("complete"):
        problems.append("the run is not complete (resume it with the same command)")
    for entry in manifest["shards"]:
        i = entry["index"]
        files = shard_files(i)
        for rel in files.values():
            path = folder.root / rel
            if not path.is_file():
                problems.append(f"shard {i}: {rel} is missing")
            elif sha256_file(path) != entry["files"].get(rel):
                problems.append(f"shard {i}: {rel} does not match its checksum")
        if any(p.startswith(f"shard {i}:") for p in problems):
            continue
        meta = pq.read_table(folder.root / files["metadata"]).to_pydict()
        text, image = np.load(folder.root / files["text_emb"]), np.load(folder.root / files["image_emb"])
        n = len(meta["id"])
        if not (n == len(text) == len(image) == entry["rows"]):
            problems.append(
                f"shard {i}: {n} metadata rows, {len(text)} text and {len(image)} image embeddings, "
                f"manifest says {entry['rows']}"
            )
        if text.dtype != np.float16 or image.dtype != np.float16 or text.shape[1:] != image.shape[1:]:
            problems.append(f"shard {i}: embeddings must be float16 of one width, got {text.dtype} {image.dtype}")
        for name, emb in (("text", text), ("image", image)):
            norms = np.linalg.norm(emb.astype(np.float32), axis=1)
            if len(norms) and (not np.isfinite(norms).all() or np.abs(norms - 1).max() > 1e-2):
                problems.append(
                    f"shard {i}: {name} embeddings are not unit norm (max error {np.abs(norms - 1).max():.3g})"
                )
        if len(set(meta["id"])) != n:
            problems.append(f"shard {i}: duplicate row ids")
        ids = set(meta["id"])
        for line_no, line in enumerate((folder.root / files["instructions"]).read_text().splitlines(), 1):
            row = json.loads(line)
            error = conversation_error(row)
            if error:
                problems.append(f"shard {i}: instruction line {line_no}: {error}")
            elif row.get("image") not in ids:
                problems.append(f"shard {i}: instruction line {line_no} refers to unknown row {row.get('image')!r}")
            instructions += 1
        rows += n
    return {
        "shards": len(indices),
        "rows": rows,
        "instructions": instructions,
        "problems": problems[:max_problems],
        "problem_count": len(problems),
    }
