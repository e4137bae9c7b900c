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
from pathlib import Path

from .errors import InputError

MAX_CHARS = 2000  # longer "captions" are documents, not seeds; they are counted and skipped
DOMAIN_TEMPLATES = (
    "a photo of a {}.",
    "a close-up photo of a {}.",
    "a {} in its natural surroundings.",
    "a picture of a {} seen from the side.",
)
SKIPS = ("empty", "too_long", "invalid_utf8", "malformed", "duplicate_id")


class SeedReader:
    """Collects rows and counts every skip; `rows` and `stats` are the result."""

    def __init__(self, source: str, max_chars: int) -> None:
        self.source, self.max_chars = source, max_chars
        self.rows: list[dict] = []
        self.ids: set[str] = set()
        self.stats: Counter = Counter({k: 0 for k in ("read", *SKIPS, "kept")})

    def add(self, ident: str, text, scene: dict | None = None) -> None:
        self.stats["read"] += 1
        if not isinstance(text, str) or not text.strip():
            self.stats["empty"] += 1
        elif len(text) > self.max_chars:
            self.stats["too_long"] += 1
        elif ident in self.ids:
            self.stats["duplicate_id"] += 1
        else:
            self.ids.add(ident)
            row = {"id": ident, "text": " ".join(text.split()), "source": self.source}
            if scene is not None:
                row["scene"] = scene
            self.rows.append(row)
            self.stats["kept"] += 1

    def skip(self, reason: str) -> None:
        self.stats["read"] += 1
        self.stats[reason] += 1


def read_seeds(source: str, *, limit: int | None = None, max_chars: int = MAX_CHARS) -> tuple[list[dict], dict]:
    """Rows `{"id", "text", "source"[, "scene"]}` and counts of what was read, kept and skipped (and why)."""
    if limit is not None and limit < 1:
        raise InputError(f"seed limit must be >= 1, got {limit}")
    reader = SeedReader(source, max_chars)
    schema, sep, rest = source.partition(":")
    if sep and schema == "world":
        _world(reader, rest)
    elif sep and schema == "hf":
        _hf(reader, rest)
    elif sep and schema == "domain":
        _domain(reader, Path(rest))
    else:
        path = Path(source)
        if not path.is_file():
            where = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
            raise InputError(f"seed file {source} not found{where}")
        {".json": _coco, ".jsonl": _jsonl, ".tsv": _tsv}.get(path.suffix, _text)(reader, path)
    rows = reader.rows[:limit] if limit else reader.rows
    if not rows:
        why = describe_seed_stats(reader.stats) if reader.stats["read"] else "it holds no rows"
        raise InputError(f"no usable seeds in {source}: {why}")
    stats = dict(reader.stats)
    stats["kept"] = len(rows)
    return rows, stats


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


def _text(reader: SeedReader, path: Path) -> None:
    for n, line in _lines(reader, path):
        reader.add(f"{path.stem}-{n}", line)


def _tsv(reader: SeedReader, path: Path) -> None:
    for n, line in _lines(reader, path):
        reader.add(f"{path.stem}-{n}", line.split("\t", 1)[0])


def _jsonl(reader: SeedReader, path: Path) -> None:
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
            reader.add(ident, scene["captions"][0] if scene["captions"] else text, scene)
            continue
        reader.add(ident, text, row.get("scene"))


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


def _coco(reader: SeedReader, path: Path) -> None:
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
        reader.add(f"coco-{a.get('image_id', 'x')}-{a.get('id', reader.stats['read'])}", a["caption"])


def _hf(reader: SeedReader, rest: str) -> None:
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
    for k, text in enumerate(ds[column]):
        reader.add(f"{Path(name).name}-{k}", text)


def _world(reader: SeedReader, rest: str) -> None:
    from .world import captions, sample_scenes

    count, _, seed = rest.partition("@")
    try:
        n, seed = int(count), int(seed or 0)
    except ValueError:
        raise InputError(f"world seeds are world:N[@SEED], got world:{rest}") from None
    if n < 1:
        raise InputError(f"world seeds need N >= 1, got {n}")
    scenes = sample_scenes(n, seed=seed)
    for k, (scene, (text,)) in enumerate(zip(scenes, captions(scenes, seed=seed, style="short"), strict=True)):
        reader.add(f"world-{seed}-{k:06d}", text, scene.to_dict())


def _domain(reader: SeedReader, path: Path) -> None:
    if not path.is_file():
        raise InputError(f"class-label file {path} not found")
    for n, line in _lines(reader, path):
        label = line.strip()
        if not label:
            reader.skip("empty")
            continue
        for t, template in enumerate(DOMAIN_TEMPLATES):
            reader.add(f"{path.stem}-{n}-t{t}", template.format(label))
