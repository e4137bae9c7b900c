"""A request cache on disk (SQLite): raw responses keyed by a hash of model, messages, sampling and seed.

Only raw responses are stored, never parsed results, so a change of parser re-uses every response.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    from .base import Completion


def request_key(model_id: str, messages: list[dict], params: dict) -> str:
    blob = json.dumps({"model": model_id, "messages": messages, "params": params}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()


class RequestCache:
    """Thread-safe, process-safe (SQLite WAL) map from request key to completion.

    Writes go to `path`, which must be on a local disk (SQLite's WAL does not work over a network file system);
    `read_also` names other cache files (read-only) that may answer a lookup too. Replies put since the last
    `take_fresh()` are kept aside, so an engine can store each shard's replies with the shard (`shard_replies`):
    that is how workers on many machines share what they paid for without any SQLite file on a shared folder.
    """

    def __init__(self, path: str | os.PathLike, *, read_also: Sequence[str | os.PathLike] = ()) -> None:
        self.path = Path(path)
        self.read_also = [Path(p) for p in read_also if Path(p).resolve() != self.path.resolve() and Path(p).is_file()]
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL)")
            self._db.commit()
            check = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(check)
        except sqlite3.DatabaseError as e:
            raise InputError(
                f"request cache {self.path} is corrupt ({e}); move it away and run again (its replies will be "
                "asked again; finished shards are not affected)"
            ) from None
        self._lock = threading.Lock()
        self._fresh: list[tuple[str, str]] = []
        self._others = []
        for other in self.read_also:
            # Another worker's file may be brand new (its table not created yet): it is read as empty until then.
            try:
                uri = f"{other.resolve().as_uri()}?mode=ro"
                self._others.append(sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=30))
            except sqlite3.DatabaseError as e:
                raise InputError(f"cannot read request cache {other}: {e}") from None

    def get_many(self, keys: Sequence[str]) -> list[Completion | None]:
        from .base import Completion

        found: dict[str, str] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                for db in (self._db, *self._others):
                    missing = [k for k in chunk if k not in found]
                    if not missing:
                        break
                    marks = ",".join("?" * len(missing))
                    try:
                        found.update(db.execute(f"SELECT key, response FROM responses WHERE key IN ({marks})", missing))
                    except sqlite3.OperationalError as e:
                        if "no such table" not in str(e):
                            raise InputError(f"cannot read a request cache: {e}") from None
        return [Completion(**json.loads(found[k]), cached=True) if k in found else None for k in keys]

    def put(self, key: str, completion: Completion) -> None:
        with self._lock:
            value = json.dumps(completion.to_dict())
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?)", (key, value))
            self._db.commit()
            self._fresh.append((key, value))

    def take_fresh(self) -> list[tuple[str, str]]:
        """(key, reply JSON) of every reply put since the last call; clears them."""
        with self._lock:
            fresh, self._fresh = self._fresh, []
        return fresh

    def preload(self, pairs) -> int:
        """Add (key, reply JSON) pairs another worker paid for (a shard's replies file); returns how many."""
        pairs = list(pairs)
        with self._lock:
            self._db.executemany("INSERT OR IGNORE INTO responses VALUES (?, ?)", pairs)
            self._db.commit()
        return len(pairs)

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            for db in (self._db, *self._others):
                db.close()


def shard_replies_path(run_dir: str | os.PathLike, index: int, step: str) -> Path:
    return Path(run_dir) / "replies" / f"{index:08d}-{step}.jsonl"


def load_shard_replies(cache: RequestCache, run_dir: str | os.PathLike, index: int, step: str) -> int:
    """Before a step works on shard `index`: give the cache the replies an earlier attempt stored for it."""
    path = shard_replies_path(run_dir, index, step)
    if not path.is_file():
        return 0
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            pairs.append((row["key"], json.dumps(row["reply"])))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a damaged line only costs its reply being asked again
    return cache.preload(pairs)


def store_shard_replies(cache: RequestCache, run_dir: str | os.PathLike, index: int, step: str) -> int:
    """After a step worked on shard `index`: store the replies it paid for beside the run's shards (one small file
    per shard and step, written whole under a temporary name by the one worker that made them, never appended to
    from two machines), so a resume on any node re-uses them, whichever actors start later."""
    from modality_transfer.io import atomic_path

    fresh = cache.take_fresh()
    if not fresh:
        return 0
    path = shard_replies_path(run_dir, index, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    lines = "".join(json.dumps({"key": k, "reply": json.loads(v)}, ensure_ascii=False) + "\n" for k, v in fresh)
    with atomic_path(path) as tmp:
        tmp.write_text(old + lines, encoding="utf-8")
    return len(fresh)
