"""Exports a VLM trainer reads directly: LLaVA/Bunny JSON + embeddings, a Hugging Face dataset, a faiss index."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from modality_transfer.io import atomic_path

from .errors import InputError
from .pipeline.storage import iter_shards, run_totals


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


class _JsonListWriter:
    """Writes a JSON list one item at a time, byte for byte what `json.dumps(items, ensure_ascii=False)` writes."""

    def __init__(self, f) -> None:
        self.f, self.count = f, 0
        f.write("[")

    def add(self, item) -> None:
        self.f.write((", " if self.count else "") + json.dumps(item, ensure_ascii=False))
        self.count += 1

    def close(self) -> None:
        self.f.write("]")


def export_llava(root: str | os.PathLike, out: str | os.PathLike) -> dict:
    """`llava.json` (a list of LLaVA/Bunny conversations whose `image` is a row id) and `embeddings.npy`
    (float16 synthetic image embeddings) with `embedding_ids.json` mapping each row id to its row.

    Written as a stream, one shard at a time: memory stays flat whatever the run's size."""
    verified(root)
    _, totals = run_totals(root)
    shards = iter_shards(root)
    first = next(shards, None)
    dim = int(first.image_emb.shape[1]) if first is not None and first.image_emb.size else 0
    rows = totals["rows"] if dim else 0
    with staged(out) as tmp:
        with open(tmp / "embeddings.npy", "wb") as emb, open(tmp / "embedding_ids.json", "w") as ids_file, \
                open(tmp / "llava.json", "w", encoding="utf-8") as conv_file:  # fmt: skip
            np.lib.format.write_array_header_1_0(
                emb, {"descr": np.dtype(np.float16).str, "fortran_order": False, "shape": (rows, dim)}
            )
            ids, conversations, written = _JsonListWriter(ids_file), _JsonListWriter(conv_file), 0
            for shard in itertools.chain([first] if first is not None else [], shards):
                emb.write(np.ascontiguousarray(shard.image_emb, np.float16).tobytes())
                written += len(shard.image_emb)
                for row_id in shard.metadata["id"]:
                    ids.add(row_id)
                for conversation in shard.instructions:
                    conversations.add(conversation)
            ids.close()
            conversations.close()
        if written != rows:
            raise InputError(f"{root}: its shards hold {written} rows but the run recorded {rows}")
    return {"conversations": conversations.count, "embeddings": ids.count, "dim": dim}


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


def _hf_rows(root, caption_only: bool):
    for meta, _, image, instructions in iter_shards(root):
        by_row: dict[str, list[dict]] = {}
        for conv in instructions:
            by_row.setdefault(conv["image"], []).append(conv)
        for k, row_id in enumerate(meta["id"]):
            convs = by_row.get(row_id) or ([None] if caption_only else [])
            for conv in convs:
                yield {
                    "id": conv["id"] if conv else row_id,
                    "image_id": row_id,
                    "caption": meta["caption"][k],
                    "provenance": meta["provenance"][k],
                    "persona": meta["persona"][k] or "",
                    "faithfulness": meta["faithfulness"][k],
                    "source": conv.get("source", "") if conv else "",
                    "conversations": conv["conversations"] if conv else [],
                    "embedding": image[k].astype(np.float32),
                }


def export_hf(root: str | os.PathLike, out: str | os.PathLike, *, caption_only: bool = True) -> dict:
    """A `datasets` dataset (save_to_disk, plus `data.parquet`): one row per conversation with its embedding, and
    (unless `caption_only` is False) one row with an empty conversation list for each row that has none, which a
    trainer uses as caption-only pretraining data. Built from a generator (Arrow on disk, flat memory)."""
    import datasets

    verified(root)
    dim = next((int(s.image_emb.shape[1]) for s in iter_shards(root) if len(s.image_emb)), 0)
    with staged(out) as tmp:
        building = tmp / ".build"
        empty = next(_hf_rows(root, caption_only), None) is None  # from_generator cannot make an empty dataset
        ds = datasets.Dataset.from_dict({k: [] for k in hf_features(dim)}, features=hf_features(dim)) if empty else \
            datasets.Dataset.from_generator(
            _hf_rows,
            gen_kwargs={"root": str(root), "caption_only": caption_only},
            features=hf_features(dim),
            cache_dir=str(building),  # never the user's HF cache: it would keep a copy and could serve a stale one
        )  # fmt: skip
        # datasets writes no shard file for an empty dataset unless told how many, and then cannot load it
        ds.save_to_disk(str(tmp / "dataset"), num_shards=1 if len(ds) == 0 else None)
        ds.to_parquet(str(tmp / "data.parquet"))
        rows = len(ds)
        conversations = sum(sum(bool(c) for c in batch["conversations"]) for batch in ds.iter(batch_size=4096))
        del ds
        shutil.rmtree(building, ignore_errors=True)
    return {"rows": rows, "conversations": conversations, "path": str(out)}


def build_index(root: str | os.PathLike, out: str | os.PathLike | None = None) -> dict:
    """A faiss inner-product index over the synthetic image embeddings (`index.faiss` + `index_ids.json`),
    filled shard by shard."""
    import faiss

    index = None
    out = Path(out) if out else Path(root) / "index"
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "index_ids.json") as tmp_ids:
        with open(tmp_ids, "w") as f:
            ids = _JsonListWriter(f)
            for meta, _, image, _ in iter_shards(root):
                if not len(image):
                    continue
                index = index or faiss.IndexFlatIP(image.shape[1])
                index.add(np.ascontiguousarray(image, np.float32))
                for row_id in meta["id"]:
                    ids.add(row_id)
            ids.close()
        if index is None:
            raise InputError(f"{root} has no rows to index")
        faiss.write_index(index, str(out / "index.faiss"))
    return {"rows": index.ntotal, "dim": index.d, "path": str(out)}
