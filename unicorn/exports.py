"""Exports a VLM trainer reads directly: LLaVA/Bunny JSON + embeddings, a Hugging Face dataset, a faiss index."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .errors import InputError
from .pipeline.storage import iter_shards


def verified(root: str | os.PathLike) -> None:
    """Refuse to export a run that `unicorn validate` would fail (altered, missing or misaligned files)."""
    from .pipeline.validate import validate_run

    result = validate_run(root)
    if result["problems"]:
        raise InputError(
            f"{root} fails validation ({result['problem_count']} problems, first: {result['problems'][0]}); "
            f"see `unicorn validate {root}`"
        )


@contextlib.contextmanager
def staged(out: str | os.PathLike):
    """A temporary folder beside `out`, renamed to `out` only when the export inside it completes; on any failure
    it is removed, so a failed export leaves no half-made or empty folder behind."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"export folder {out} exists and is not empty; choose another --out")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as e:
        raise InputError(f"cannot create the export folder beside {out}: {e.strerror}") from None
    try:
        yield tmp
        if out.exists():
            out.rmdir()  # empty, checked above
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export_llava(root: str | os.PathLike, out: str | os.PathLike) -> dict:
    """`llava.json` (a list of LLaVA/Bunny conversations whose `image` is a row id) and `embeddings.npy`
    (float16 synthetic image embeddings) with `embedding_ids.json` mapping each row id to its row."""
    verified(root)
    conversations, ids, embeddings = [], [], []
    for meta, _, image, instructions in iter_shards(root):
        ids += meta["id"]
        embeddings.append(image)
        conversations += instructions
    emb = np.concatenate(embeddings) if embeddings else np.zeros((0, 0), np.float16)
    with staged(out) as tmp:
        with open(tmp / "embeddings.npy", "wb") as f:
            np.save(f, emb)
        (tmp / "embedding_ids.json").write_text(json.dumps(ids))
        (tmp / "llava.json").write_text(json.dumps(conversations, ensure_ascii=False), encoding="utf-8")
    return {"conversations": len(conversations), "embeddings": len(ids), "dim": int(emb.shape[1]) if emb.size else 0}


def hf_features(dim: int):
    """Explicit types, so a run with no conversations (or no rows) still saves and loads."""
    import datasets

    text = datasets.Value("string")
    return datasets.Features(
        {
            "id": text,
            "image_id": text,
            "caption": text,
            "provenance": text,
            "persona": text,
            "faithfulness": datasets.Value("float32"),
            "source": text,  # programs, llm, or "" for a caption-only pretraining row
            "conversations": [{"from": text, "value": text}],
            "embedding": datasets.Sequence(datasets.Value("float32"), length=dim),
        }
    )


def export_hf(root: str | os.PathLike, out: str | os.PathLike, *, caption_only: bool = True) -> dict:
    """A `datasets` dataset (save_to_disk, plus `data.parquet`): one row per conversation with its embedding, and
    (unless `caption_only` is False) one row with an empty conversation list for each row that has none, which a
    trainer uses as caption-only pretraining data."""
    import datasets

    verified(root)
    records = {name: [] for name in hf_features(1)}
    dim = 0
    for meta, _, image, instructions in iter_shards(root):
        dim = image.shape[1] if len(image) else dim
        by_row: dict[str, list[dict]] = {}
        for conv in instructions:
            by_row.setdefault(conv["image"], []).append(conv)
        for k, row_id in enumerate(meta["id"]):
            convs = by_row.get(row_id) or ([None] if caption_only else [])
            for conv in convs:
                records["id"].append(conv["id"] if conv else row_id)
                records["image_id"].append(row_id)
                records["caption"].append(meta["caption"][k])
                records["provenance"].append(meta["provenance"][k])
                records["persona"].append(meta["persona"][k] or "")
                records["faithfulness"].append(meta["faithfulness"][k])
                records["source"].append(conv.get("source", "") if conv else "")
                records["conversations"].append(conv["conversations"] if conv else [])
                records["embedding"].append(image[k].astype(np.float32))
    ds = datasets.Dataset.from_dict(records, features=hf_features(dim))
    with staged(out) as tmp:
        # datasets writes no shard file for an empty dataset unless told how many, and then cannot load it
        ds.save_to_disk(str(tmp / "dataset"), num_shards=1 if len(ds) == 0 else None)
        ds.to_parquet(str(tmp / "data.parquet"))
    return {"rows": len(ds), "conversations": sum(bool(c) for c in records["conversations"]), "path": str(out)}


def build_index(root: str | os.PathLike, out: str | os.PathLike | None = None) -> dict:
    """A faiss inner-product index over the synthetic image embeddings (`index.faiss` + `index_ids.json`)."""
    import faiss

    ids, chunks = [], []
    for meta, _, image, _ in iter_shards(root):
        ids += meta["id"]
        chunks.append(image.astype(np.float32))
    if not ids:
        raise InputError(f"{root} has no rows to index")
    emb = np.concatenate(chunks)
    index = faiss.IndexFlatIP(emb.shape[1])
    index.add(emb)
    out = Path(out) if out else Path(root) / "index"
    out.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(out / "index.faiss"))
    (out / "index_ids.json").write_text(json.dumps(ids))
    return {"rows": index.ntotal, "dim": emb.shape[1], "path": str(out)}
