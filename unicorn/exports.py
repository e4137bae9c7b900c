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


PRETRAIN_PROMPT = "<image>\nDescribe the image briefly."  # LLaVA stage 1 ("plain"): the prompt is replaced by <image>
DTYPES = {"float32": np.float32, "float16": np.float16}


def _dtype(name: str):
    if name not in DTYPES:
        raise InputError(f"--dtype must be float32 or float16, got {name!r}")
    return DTYPES[name]


def pretrain_row(row_id: str, caption: str) -> dict:
    """A caption row as LLaVA/Bunny stage-1 data: two turns, the image then its caption."""
    turns = [{"from": "human", "value": PRETRAIN_PROMPT}, {"from": "gpt", "value": caption}]
    return {"id": row_id, "image": row_id, "caption": caption, "conversations": turns}


def _check_out_free(out) -> None:
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"export folder {out} exists and is not empty; choose another --out")


def export_llava(root: str | os.PathLike, out: str | os.PathLike, *, dtype: str = "float32") -> dict:
    """A LLaVA-shaped export whose `image` is an embedding id, not a file: `llava.json` (each conversation, with
    its row's `caption`), `pretrain.json` (one stage-1 row per caption row), `embeddings.npy` (the synthetic image
    embeddings, `dtype`) and `embedding_ids.json` (row i of the array is that id). A trainer that reads precomputed
    embeddings looks `image` up in `embedding_ids.json`; stock LLaVA, which opens `image` as a file, does not.

    Written as a stream, one shard at a time: memory stays flat whatever the run's size."""
    _check_out_free(out)
    kind = _dtype(dtype)
    verified(root)
    _, totals = run_totals(root)
    shards = iter_shards(root)
    first = next(shards, None)
    dim = int(first.image_emb.shape[1]) if first is not None and first.image_emb.size else 0
    rows = totals["rows"] if dim else 0
    with staged(out) as tmp:
        files = [
            open(tmp / name, "w", encoding="utf-8") for name in ("embedding_ids.json", "llava.json", "pretrain.json")
        ]
        with open(tmp / "embeddings.npy", "wb") as emb, files[0], files[1], files[2]:
            np.lib.format.write_array_header_1_0(
                emb, {"descr": np.dtype(kind).str, "fortran_order": False, "shape": (rows, dim)}
            )
            ids, conversations, pretrain = (_JsonListWriter(f) for f in files)
            written = 0
            for shard in itertools.chain([first] if first is not None else [], shards):
                emb.write(np.ascontiguousarray(shard.image_emb, kind).tobytes())
                written += len(shard.image_emb)
                captions = dict(zip(shard.metadata["id"], shard.metadata["caption"], strict=True))
                for row_id, caption in captions.items():
                    ids.add(row_id)
                    pretrain.add(pretrain_row(row_id, caption))
                for conversation in shard.instructions:
                    conversations.add({**conversation, "caption": captions[conversation["image"]]})
            for writer in (ids, conversations, pretrain):
                writer.close()
        if written != rows:
            raise InputError(f"{root}: its shards hold {written} rows but the run recorded {rows}")
        (tmp / "FORMAT.md").write_text(LLAVA_FORMAT.format(rows=rows, dim=dim, dtype=dtype))
    return {"conversations": conversations.count, "pretrain": pretrain.count, "embeddings": ids.count, "dim": dim,
            "dtype": dtype}  # fmt: skip


LLAVA_FORMAT = """# unicorn export --format llava (format unicorn-llava, version 2)

A LLaVA-shaped export whose `image` field is an embedding id, not an image file.

- `embeddings.npy`: ({rows}, {dim}) {dtype}, the synthetic image embeddings (L2-normalised), one row per caption row.
- `embedding_ids.json`: a JSON list; entry i is the id of row i of `embeddings.npy`.
- `pretrain.json`: stage 1 (connector) data: one row per caption row, `{{"id", "image", "caption", "conversations":
  [human "<image>\\n...", gpt caption]}}`.
- `llava.json`: stage 2 (instruction) data: one row per conversation, `{{"id", "image", "caption", "source",
  "conversations": [...]}}`; `image` is an id in `embedding_ids.json`.

Stock LLaVA and Bunny open `image` as a file path and cannot read this unchanged: their dataset's image loading
is replaced by a look-up of `image` in `embedding_ids.json`. Unicorn's released trainer reads
`unicorn export --format unicorn` unchanged instead.
"""


UNICORN_FORMAT = """# unicorn export --format unicorn (format unicorn-released, version 1)

The layout the Unicorn paper's released trainer (Yu-xm/Unicorn, a Bunny fork) reads unchanged.

- `embeddings/embeddings_NNNNN.pkl`: Python pickles (protocol 4), each a list of `{{"id": str, "embed":
  numpy.ndarray ({dim},) {dtype}}}`; {rows} embeddings in all ({embeddings}). Pickle is that trainer's format; this
  project writes these files and never reads one back. Load them only from a source you trust.
- `pretrain.json`: stage 1 data, one row per caption row: `{{"id", "caption", "conversations": [human
  "<image>\\n...", gpt caption]}}` (Bunny's "plain" template keeps exactly two turns).
- `instructions.json`: stage 2 data, one row per conversation: `{{"id", "caption", "conversations"}}`, `id` equal
  to its embedding's id (several rows may share one), `conversation_id` naming the conversation itself.

Two lines of their code change:
1. `bunny/util/data_utils.py`, `LazySupervisedDataset.__init__`: `folder_path = '.../embeddings'` (this folder's
   `embeddings/`).
2. `bunny/model/bunny_arch.py`, `initialize_vision_modules`: `self.config.mm_hidden_size = {dim}` (it is 1280 there,
   LLM2CLIP's width).

Then `--data_path pretrain.json` for stage 1 (`script/train/pretrain.sh`) and `--data_path instructions.json` for
stage 2 (`script/train/finetune_full.sh`).
"""

PICKLE_ROWS = 65536  # embeddings per pickle file: the trainer loads every file; the export holds one file's rows


def export_unicorn(
    root: str | os.PathLike, out: str | os.PathLike, *, dtype: str = "float32", embeddings: str = "synthetic"
) -> dict:
    """Exactly the layout Unicorn's released trainer reads (see UNICORN_FORMAT): pickled `{"id", "embed"}` lists,
    a stage-1 `pretrain.json` and a stage-2 `instructions.json` whose ids are embedding ids.

    `embeddings`: `synthetic` (the run's projected image embeddings) or `released` (stage 3 as Unicorn released it:
    each text embedding, normalised, minus the mean over the run's rows, not renormalised; two passes, flat memory).
    """
    import pickle

    _check_out_free(out)
    kind = _dtype(dtype)
    if embeddings not in ("synthetic", "released"):
        raise InputError(f"--embeddings must be synthetic or released, got {embeddings!r}")
    verified(root)
    mean = None
    if embeddings == "released":  # pass 1: the mean of the normalised text embeddings, summed in float32 as released
        total, count = None, 0
        for shard in iter_shards(root):
            if len(shard.text_emb):
                unit = _unit(shard.text_emb.astype(np.float32))
                total = unit.sum(0) if total is None else total + unit.sum(0)
                count += len(unit)
        mean = total / np.float32(count) if count else None
    files, counts = 0, {"pretrain": 0, "instructions": 0, "embeddings": 0}
    dim = 0
    with staged(out) as tmp:
        (tmp / "embeddings").mkdir()
        batch: list[dict] = []

        def flush() -> None:
            nonlocal files, batch
            if batch:
                with open(tmp / "embeddings" / f"embeddings_{files:05d}.pkl", "wb") as f:
                    pickle.dump(batch, f, protocol=4)  # the peer's format; never read back by this project
                files, batch = files + 1, []

        with open(tmp / "pretrain.json", "w", encoding="utf-8") as p, open(tmp / "instructions.json", "w",
                                                                          encoding="utf-8") as q:  # fmt: skip
            pretrain, instructions = _JsonListWriter(p), _JsonListWriter(q)
            for shard in iter_shards(root):
                if not len(shard.metadata["id"]):
                    continue
                vectors = shard.image_emb.astype(np.float32) if mean is None else \
                    _unit(shard.text_emb.astype(np.float32)) - mean  # fmt: skip
                dim = vectors.shape[1]
                captions = dict(zip(shard.metadata["id"], shard.metadata["caption"], strict=True))
                for k, (row_id, caption) in enumerate(captions.items()):
                    batch.append({"id": row_id, "embed": np.ascontiguousarray(vectors[k], kind)})
                    pretrain.add({"id": row_id, "caption": caption, "conversations": pretrain_row(row_id, caption)[
                        "conversations"]})  # fmt: skip
                    if len(batch) >= PICKLE_ROWS:
                        flush()
                counts["embeddings"] += len(captions)
                for conv in shard.instructions:
                    row_id = conv["image"]
                    turns = conv["conversations"]
                    instructions.add({"id": row_id, "caption": captions[row_id], "conversation_id": conv["id"],
                                      "conversations": turns})  # fmt: skip
            flush()
            pretrain.close()
            instructions.close()
        counts["pretrain"], counts["instructions"] = pretrain.count, instructions.count
        (tmp / "FORMAT.md").write_text(UNICORN_FORMAT.format(rows=counts["embeddings"], dim=dim, dtype=dtype,
                                                             embeddings=embeddings))  # fmt: skip
    return {**counts, "files": files, "dim": dim, "dtype": dtype, "embeddings_from": embeddings}


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


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
    """A `datasets` dataset saved at `out` itself (`datasets.load_from_disk(out)` loads it), plus `data.parquet`
    beside its files: one row per conversation with its embedding, and (unless `caption_only` is False) one row with
    an empty conversation list for each row that has none, which a trainer uses as caption-only pretraining data.
    Built from a generator (Arrow on disk, flat memory)."""
    import datasets

    _check_out_free(out)
    verified(root)
    dim = next((int(s.image_emb.shape[1]) for s in iter_shards(root) if len(s.image_emb)), 0)
    with staged(out) as tmp:
        # the generator's Arrow cache: beside the export, never the user's HF cache (it would keep a copy and
        # could serve a stale one), and removed when done
        building = Path(tempfile.mkdtemp(prefix=f".{Path(out).name}.build.", dir=Path(out).parent))
        try:
            empty = next(_hf_rows(root, caption_only), None) is None  # from_generator cannot make an empty dataset
            ds = datasets.Dataset.from_dict({k: [] for k in hf_features(dim)}, features=hf_features(dim)) if empty \
                else datasets.Dataset.from_generator(_hf_rows, gen_kwargs={"root": str(root), "caption_only":
                    caption_only}, features=hf_features(dim), cache_dir=str(building))  # fmt: skip
            # datasets writes no shard file for an empty dataset unless told how many, and then cannot load it
            ds.save_to_disk(str(tmp), num_shards=1 if len(ds) == 0 else None)
            ds.to_parquet(str(tmp / "data.parquet"))
            rows = len(ds)
            conversations = sum(sum(bool(c) for c in batch["conversations"]) for batch in ds.iter(batch_size=4096))
            del ds
        finally:
            shutil.rmtree(building, ignore_errors=True)
    return {"rows": rows, "conversations": conversations, "path": str(out),
            "load": f"datasets.load_from_disk({str(out)!r})"}  # fmt: skip


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
