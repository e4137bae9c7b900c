"""Caption seeds from files, datasets, the procedural world or class labels, with every skipped row counted.

Sources: a `.txt` file (one caption per line), `.jsonl` (`{"id"?, "caption"|"text", "scene"?}` per line, as
`unicorn world sample` writes; or LLaVA's symbolic context, `{"id", "captions": [...], "instances": [{"category",
"bbox": [x1, y1, x2, y2] normalised to [0, 1]}]}`, whose first caption is the seed and whose captions and boxes
become the row's context), COCO captions `.json`, a CC3M-style `.tsv` (caption, then url),
`hf:NAME_OR_DIR[:SPLIT][#COLUMN]` (a Hugging Face dataset), `world:N[@SEED]` (world scene graphs) and
`domain:LABELS.txt` (Unicorn's domain seeds: class labels placed in templates).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from .errors import InputError
from .hashing import U64Set

MAX_CHARS = 2000  # longer "captions" are documents, not seeds; they are counted and skipped
DOMAIN_TEMPLATES = (
    "a photo of a {}.",
    "a close-up photo of a {}.",
    "a {} in its natural surroundings.",
    "a picture of a {} seen from the side.",
)
SKIPS = ("empty", "too_long", "invalid_utf8", "malformed", "duplicate_id")


class SeedReader:
    """Counts every row read, kept and skipped; `add` yields the row when it is kept (readers are generators)."""

    def __init__(self, source: str, max_chars: int) -> None:
        self.source, self.max_chars = source, max_chars
        self.ids = U64Set()  # ~8 bytes per seed id, so a million-line seed file streams at flat memory
        self.stats: Counter = Counter({k: 0 for k in ("read", *SKIPS, "kept")})

    def add(self, ident: str, text, scene: dict | None = None):
        self.stats["read"] += 1
        if not isinstance(text, str) or not text.strip():
            self.stats["empty"] += 1
        elif len(text) > self.max_chars:
            self.stats["too_long"] += 1
        elif not self.ids.add(ident):
            self.stats["duplicate_id"] += 1
        else:
            row = {"id": ident, "text": " ".join(text.split()), "source": self.source}
            if scene is not None:
                row["scene"] = scene
            self.stats["kept"] += 1
            yield row

    def skip(self, reason: str) -> None:
        self.stats["read"] += 1
        self.stats[reason] += 1


class SeedStream:
    """The seed rows of `source` as a stream: one pass, flat memory, stopping as soon as `limit` rows are kept.

    Iterate it once; `stats` counts what was read, kept and skipped (and why) so far. A missing source is refused
    when the stream is made, before anything is read or written; a source with no usable row when it ends."""

    def __init__(self, source: str, *, limit: int | None = None, max_chars: int = MAX_CHARS) -> None:
        if limit is not None and limit < 1:
            raise InputError(f"seed limit must be >= 1, got {limit}")
        self.source, self.limit = source, limit
        self.reader = SeedReader(source, max_chars)
        schema, sep, rest = source.partition(":")
        if sep and schema in ("world", "hf", "domain"):
            self._rows = {"world": _world, "hf": _hf, "domain": lambda r, x: _domain(r, Path(x))}[schema](
                self.reader, rest
            )
            if schema == "domain" and not Path(rest).is_file():
                raise InputError(f"class-label file {rest} not found")
        else:
            path = Path(source)
            if not path.is_file():
                where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
                raise InputError(f"seed file {source} not found{where}")
            self._rows = {".json": _coco, ".jsonl": _jsonl, ".tsv": _tsv}.get(path.suffix, _text)(self.reader, path)

    @property
    def stats(self) -> dict:
        return dict(self.reader.stats)

    def __iter__(self):
        kept = 0
        for row in self._rows:
            yield row
            kept += 1
            if self.limit and kept >= self.limit:
                self._rows.close()
                break
        if not kept:
            stats = self.reader.stats
            why = describe_seed_stats(stats) if stats["read"] else "it holds no rows"
            raise InputError(f"no usable seeds in {self.source}: {why}")

    def shards(self, size: int):
        """(index, rows) for consecutive shards of `size` rows: the pipeline's unit of work and of resume."""
        shard: list[dict] = []
        index = 0
        for row in self:
            shard.append(row)
            if len(shard) == size:
                yield index, shard
                index, shard = index + 1, []
        if shard:
            yield index, shard


def iter_seeds(source: str, *, limit: int | None = None, max_chars: int = MAX_CHARS) -> SeedStream:
    """Rows `{"id", "text", "source"[, "scene"]}` as a stream; its `stats` count what was read, kept and skipped."""
    return SeedStream(source, limit=limit, max_chars=max_chars)


def seed_count_hint(source: str, limit: int | None) -> int | None:
    """How many seeds a source will give at most, cheaply (for a progress bar's total): `limit`, N of world:N, or
    the line count of a line-per-seed file; None where only reading it would tell."""
    schema, sep, rest = source.partition(":")
    count = None
    if sep and schema == "world":
        try:
            count = int(rest.partition("@")[0])
        except ValueError:
            count = None
    elif not sep and Path(source).suffix in (".txt", ".jsonl", ".tsv") and Path(source).is_file():
        with open(source, "rb") as f:
            count = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 20), b""))
    return min(count, limit) if count is not None and limit else (limit or count)


def read_seeds(source: str, *, limit: int | None = None, max_chars: int = MAX_CHARS) -> tuple[list[dict], dict]:
    """Rows `{"id", "text", "source"[, "scene"]}` in a list, and counts of what was read, kept and skipped (and why).
    For small sources; `iter_seeds` streams."""
    stream = iter_seeds(source, limit=limit, max_chars=max_chars)
    rows = list(stream)
    return rows, stream.stats


def describe_seed_stats(stats) -> str:
    """`read 4, kept 3, skipped: invalid_utf8 1`, naming only the reasons that occurred."""
    skipped = ", ".join(f"{k} {stats[k]}" for k in SKIPS if stats.get(k))
    return f"read {stats.get('read', 0)}, kept {stats.get('kept', 0)}" + (f", skipped: {skipped}" if skipped else "")


def _lines(reader: SeedReader, path: Path):
    """(line number, decoded line) for each line; undecodable lines are counted, never guessed at."""
    with path.open("rb") as f:
        for n, raw in enumerate(f, 1):
            try:
                yield n, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                reader.skip("invalid_utf8")


def _text(reader: SeedReader, path: Path) -> Iterator[dict]:
    for n, line in _lines(reader, path):
        yield from reader.add(f"{path.stem}-{n}", line)


def _tsv(reader: SeedReader, path: Path) -> Iterator[dict]:
    for n, line in _lines(reader, path):
        yield from reader.add(f"{path.stem}-{n}", line.split("\t", 1)[0])


def _jsonl(reader: SeedReader, path: Path) -> Iterator[dict]:
    for n, line in _lines(reader, path):
        if not line.strip():
            reader.skip("empty")
            continue
        try:
            row = json.loads(line)
            text = row.get("caption", row.get("text"))
            ident = str(row.get("id", f"{path.stem}-{n}"))
        except (json.JSONDecodeError, AttributeError):
            reader.skip("malformed")
            continue
        if "instances" in row:  # LLaVA's captions + boxes: bad boxes are an error, not a skip (they are the truth)
            scene = boxes_context(row, f"{path} line {n}")
            yield from reader.add(ident, scene["captions"][0] if scene["captions"] else text, scene)
            continue
        yield from reader.add(ident, text, row.get("scene"))


INSTANCE_KEYS = {"category", "bbox"}


def boxes_context(row: dict, where: str) -> dict:
    """`{"captions": [...], "instances": [{"category", "bbox"}]}` from a LLaVA caps+boxes row, every box checked."""
    captions = row.get("captions", [row.get("caption")] if row.get("caption") else [])
    if not isinstance(captions, list) or not all(isinstance(c, str) and c.strip() for c in captions):
        raise InputError(f"{where}: captions must be a list of non-empty strings")
    instances = row["instances"]
    if not isinstance(instances, list):
        raise InputError(f"{where}: instances must be a list")
    for k, inst in enumerate(instances):
        if not isinstance(inst, dict) or set(inst) != INSTANCE_KEYS:
            keys = sorted(set(inst) - INSTANCE_KEYS) if isinstance(inst, dict) else []
            detail = f"unknown keys {keys}" if keys else f"needs exactly the keys {sorted(INSTANCE_KEYS)}"
            raise InputError(f"{where}: instance {k}: {detail}")
        box = inst["bbox"]
        if not isinstance(inst["category"], str) or not inst["category"].strip():
            raise InputError(f"{where}: instance {k}: category must be a non-empty string")
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)):
            raise InputError(f"{where}: instance {k}: bbox must be [x1, y1, x2, y2], got {box!r}")
        if not all(0 <= v <= 1 for v in box) or box[0] > box[2] or box[1] > box[3]:
            raise InputError(f"{where}: instance {k}: bbox {box} is outside [0, 1] or not x1 <= x2, y1 <= y2")
    return {"captions": [" ".join(c.split()) for c in captions], "instances": instances}


def _coco(reader: SeedReader, path: Path) -> Iterator[dict]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
        annotations = data["annotations"]
    except UnicodeDecodeError:
        raise InputError(f"{path} is not valid UTF-8") from None
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise InputError(f"{path} is not COCO captions JSON (needs 'annotations'): {type(e).__name__}") from None
    for a in annotations:
        if not isinstance(a, dict) or "caption" not in a:
            reader.skip("malformed")
            continue
        yield from reader.add(f"coco-{a.get('image_id', 'x')}-{a.get('id', reader.stats['read'])}", a["caption"])


def _hf(reader: SeedReader, rest: str) -> Iterator[dict]:
    import datasets

    name, _, column = rest.partition("#")
    name, _, split = name.partition(":") if not Path(name).exists() else (name, "", "")
    try:
        ds = (
            datasets.load_from_disk(name)
            if (Path(name) / "dataset_info.json").exists() or (Path(name) / "state.json").exists()
            else datasets.load_dataset(name, split=split or "train")
        )
        if isinstance(ds, datasets.DatasetDict):
            ds = ds[split or "train"]
    except Exception as e:  # hub and file errors come in many types
        raise InputError(f"could not load dataset {name}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
    column = column or next((c for c in ("caption", "text", "sentence") if c in ds.column_names), "")
    if column not in ds.column_names:
        raise InputError(f"dataset {name} has no column {column!r}; columns: {', '.join(ds.column_names)}")
    for start in range(0, len(ds), 1024):  # a column at a time would hold the whole dataset's text
        for k, text in enumerate(ds[start : start + 1024][column], start):
            yield from reader.add(f"{Path(name).name}-{k}", text)


def _world(reader: SeedReader, rest: str) -> Iterator[dict]:
    import numpy as np

    from .world import sample_scenes
    from .world.caption import caption

    count, _, seed = rest.partition("@")
    try:
        n, seed = int(count), int(seed or 0)
    except ValueError:
        raise InputError(f"world seeds are world:N[@SEED], got world:{rest}") from None
    if n < 1:
        raise InputError(f"world seeds need N >= 1, got {n}")
    for k in range(n):  # scene k and its caption depend only on (seed, k): streamed one at a time
        scene = sample_scenes(1, seed=seed, start=k)[0]
        text = caption(scene, np.random.default_rng([seed, k, 1]), "short")
        yield from reader.add(f"world-{seed}-{k:06d}", text, scene.to_dict())


def _domain(reader: SeedReader, path: Path) -> Iterator[dict]:
    if not path.is_file():
        raise InputError(f"class-label file {path} not found")
    for n, line in _lines(reader, path):
        label = line.strip()
        if not label:
            reader.skip("empty")
            continue
        for t, template in enumerate(DOMAIN_TEMPLATES):
            yield from reader.add(f"{path.stem}-{n}-t{t}", template.format(label))
