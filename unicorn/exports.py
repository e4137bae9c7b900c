"""Exports a VLM trainer reads directly: LLaVA/Bunny JSON + embeddings, a Hugging Face dataset, a faiss index."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from modality_transfer.io import atomic_path

from .errors import InputError
from .pipeline.storage import iter_shards


def export_llava(root: str | os.PathLike, out: str | os.PathLike) -> dict:
    """`llava.json` (a list of LLaVA/Bunny conversations whose `image` is a row id) and `embeddings.npy`
    (float16 synthetic image embeddings) with `embedding_ids.json` mapping each row id to its row."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    conversations, ids, embeddings = [], [], []
    for meta, _, image, instructions in iter_shards(root):
        ids += meta["id"]
        embeddings.append(image)
        conversations += instructions
    emb = np.concatenate(embeddings) if embeddings else np.zeros((0, 0), np.float16)
    with atomic_path(out / "embeddings.npy") as tmp, open(tmp, "wb") as f:
        np.save(f, emb)
    with atomic_path(out / "embedding_ids.json") as tmp:
        tmp.write_text(json.dumps(ids))
    with atomic_path(out / "llava.json") as tmp:
        tmp.write_text(json.dumps(conversations, ensure_ascii=False), encoding="utf-8")
    return {"conversations": len(conversations), "embeddings": len(ids), "dim": int(emb.shape[1]) if emb.size else 0}


def export_hf(root: str | os.PathLike, out: str | os.PathLike) -> dict:
    """A `datasets` dataset (save_to_disk, plus `data.parquet`) with one row per conversation and its embedding."""
    import datasets

    records = {"id": [], "image_id": [], "caption": [], "conversations": [], "embedding": []}
    for meta, _, image, instructions in iter_shards(root):
        row_of = {rid: k for k, rid in enumerate(meta["id"])}
        for conv in instructions:
            k = row_of[conv["image"]]
            records["id"].append(conv["id"])
            records["image_id"].append(conv["image"])
            records["caption"].append(meta["caption"][k])
            records["conversations"].append(json.dumps(conv["conversations"], ensure_ascii=False))
            records["embedding"].append(image[k].astype(np.float32).tolist())
    ds = datasets.Dataset.from_dict(records)
    out = Path(out)
    ds.save_to_disk(str(out / "dataset"))
    ds.to_parquet(str(out / "data.parquet"))
    return {"rows": len(ds), "path": str(out)}


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
