"""The index folder: a SQLite catalog (sources, frames and their vectors), a FAISS index, and thumbnails.

The catalog is the single source of truth and every change to it is one transaction per source, so a run killed
at any moment leaves whole sources or nothing. The FAISS file is a cache of the catalog's vectors, replaced
atomically; whoever opens the index brings it up to date from the catalog (only the difference), so a stale or
missing FAISS file is never wrong, only slower to open. Frame ids are never reused (AUTOINCREMENT), which is what
makes that difference exact.
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Sequence

import faiss
import numpy as np

FORMAT_VERSION = 1
CATALOG = "catalog.sqlite"
VECTORS = "vectors.faiss"
THUMBS = "thumbs"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    duration REAL NOT NULL,
    fps REAL NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    frames INTEGER NOT NULL,
    indexed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    t REAL NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS frames_by_source ON frames(source_id, t);
CREATE TABLE IF NOT EXISTS skipped (
    path TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    at REAL NOT NULL
);
"""


class StoreError(Exception):
    """A problem with the index folder itself; str() is the message for the user."""


def thumb_path(root: Path, frame_id: int) -> Path:
    return root / THUMBS / str(frame_id // 1000) / f"{frame_id}.jpg"


class Store:
    """One open index folder. Thread-safe; any number of processes may read while one writes."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        db = self.root / CATALOG
        if not db.is_file():
            raise StoreError(f"No vidsearch index at {self.root} (run `vidsearch index PATH` first).")
        self._lock = threading.RLock()
        self._db = sqlite3.connect(db, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.execute("PRAGMA busy_timeout=30000")
        self.meta = self._read_meta()
        if int(self.meta.get("format_version", 0)) != FORMAT_VERSION:
            raise StoreError(f"The index at {self.root} has format {self.meta.get('format_version')}; "
                              f"this vidsearch reads format {FORMAT_VERSION}. Re-index into a new folder.")
        self.dim = int(self.meta["dim"])
        self._vectors: faiss.IndexIDMap2 | None = None
        self._generation = -1  # catalog generation that self._vectors reflects

    @classmethod
    def create(cls, root: str | os.PathLike, *, model: str, pretrained: str, dim: int, interval: float) -> "Store":
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(root / CATALOG, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, nor the writer them
            db.execute("BEGIN IMMEDIATE")  # schema and meta in one transaction: a half-created index never exists
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)
            meta = {"model": model, "pretrained": pretrained, "dim": dim, "interval": interval,
                    "format_version": FORMAT_VERSION, "created_at": time.time(), "generation": 0}
            for k, v in meta.items():
                db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (k, json.dumps(v)))
            db.execute("COMMIT")
        finally:
            db.close()
        return cls(root)

    @staticmethod
    def exists(root: str | os.PathLike) -> bool:
        return (Path(root) / CATALOG).is_file()

    # -- reading ---------------------------------------------------------------------------------------------

    def _read_meta(self) -> dict:
        return {r["key"]: json.loads(r["value"]) for r in self._db.execute("SELECT key, value FROM meta")}

    def generation(self) -> int:
        with self._lock:
            return int(json.loads(self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]))

    def sources(self) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute("SELECT * FROM sources ORDER BY path").fetchall()

    def source(self, source_id: int) -> sqlite3.Row | None:
        with self._lock:
            return self._db.execute("SELECT * FROM sources WHERE id=?", (source_id,)).fetchone()

    def source_by_path(self, path: str) -> sqlite3.Row | None:
        with self._lock:
            return self._db.execute("SELECT * FROM sources WHERE path=?", (path,)).fetchone()

    def skipped(self) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute("SELECT * FROM skipped ORDER BY path").fetchall()

    def counts(self) -> dict:
        with self._lock:
            row = self._db.execute(
                "SELECT (SELECT count(*) FROM sources) AS sources, (SELECT count(*) FROM frames) AS frames,"
                " (SELECT count(*) FROM sources WHERE kind='video') AS videos,"
                " (SELECT count(*) FROM sources WHERE kind='image') AS images,"
                " (SELECT count(*) FROM skipped) AS skipped").fetchone()
            return dict(row)

    def frames(self, ids: Sequence[int]) -> dict[int, sqlite3.Row]:
        """Frame rows joined with their source, for the ids still in the catalog."""
        if not ids:
            return {}
        with self._lock:
            q = ("SELECT f.id, f.t, f.source_id, s.path, s.kind, s.duration FROM frames f "
                 "JOIN sources s ON s.id = f.source_id WHERE f.id IN (%s)" % ",".join("?" * len(ids)))
            return {r["id"]: r for r in self._db.execute(q, [int(i) for i in ids])}

    def frame_vector(self, frame_id: int) -> np.ndarray | None:
        with self._lock:
            row = self._db.execute("SELECT vector FROM frames WHERE id=?", (frame_id,)).fetchone()
        return None if row is None else np.frombuffer(row[0], dtype=np.float32).copy()

    def size_on_disk(self) -> int:
        return sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())

    # -- vectors ---------------------------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product search (cosine, as all vectors are normalised) over the catalog as last committed."""
        with self._lock:
            index = self._synced_vectors()
            if index.ntotal == 0:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            return index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, index.ntotal))

    def _synced_vectors(self) -> faiss.IndexIDMap2:
        """The in-memory FAISS index, brought up to date with the catalog if another process changed it."""
        if self._vectors is None:
            path = self.root / VECTORS
            self._vectors = (faiss.read_index(str(path)) if path.is_file()
                             else faiss.IndexIDMap2(faiss.IndexFlatIP(self.dim)))
            self._generation = -1
        if self.generation() == self._generation:
            return self._vectors
        # One read transaction: the generation and the rows come from the same snapshot.
        self._db.execute("BEGIN")
        try:
            gen = int(json.loads(self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]))
            have = faiss.vector_to_array(self._vectors.id_map) if self._vectors.ntotal else np.zeros(0, np.int64)
            want = np.fromiter((r[0] for r in self._db.execute("SELECT id FROM frames")), dtype=np.int64)
            stale = np.setdiff1d(have, want, assume_unique=True)
            missing = np.setdiff1d(want, have, assume_unique=True)
            if len(stale):
                self._vectors.remove_ids(stale)
            for start in range(0, len(missing), 10000):
                chunk = missing[start:start + 10000].tolist()
                rows = self._db.execute("SELECT id, vector FROM frames WHERE id IN (%s)" % ",".join("?" * len(chunk)),
                                        chunk).fetchall()
                self._add_vectors([r[0] for r in rows], [r[1] for r in rows])
        finally:
            self._db.execute("COMMIT")
        self._generation = gen
        return self._vectors

    def _add_vectors(self, ids: Sequence[int], blobs: Iterable[bytes | np.ndarray]) -> None:
        if not ids:
            return
        vecs = np.stack([np.frombuffer(b, dtype=np.float32) if isinstance(b, bytes) else b for b in blobs])
        self._vectors.add_with_ids(vecs.astype(np.float32, copy=False), np.asarray(ids, dtype=np.int64))

    def save_vectors(self) -> None:
        """Write the FAISS file atomically (temp file, fsync, rename): readers see the old or the new one."""
        with self._lock:
            index = self._synced_vectors()
            tmp = self.root / (VECTORS + ".tmp")
            faiss.write_index(index, str(tmp))
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, self.root / VECTORS)

    # -- writing (one writer at a time: see ingest.WriterLock) ------------------------------------------------

    def _bump(self) -> int:
        self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
        return int(self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])

    def put_source(self, path: str, kind: str, size: int, mtime: float, duration: float, fps: float,
                   width: int, height: int, frames: Sequence[tuple[float, np.ndarray, bytes]]) -> list[int]:
        """Replace whatever the catalog holds for `path` with these frames (t, vector, thumbnail JPEG), atomically."""
        with self._lock:
            self._synced_vectors()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                _, old = self._drop(path)
                cur = self._db.execute(
                    "INSERT INTO sources (path, kind, size, mtime, duration, fps, width, height, frames, indexed_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (path, kind, size, mtime, duration, fps, width, height, len(frames), time.time()))
                source_id = cur.lastrowid
                ids = []
                for t, vec, jpeg in frames:
                    fid = self._db.execute("INSERT INTO frames (source_id, t, vector) VALUES (?,?,?)",
                                           (source_id, t, vec.astype(np.float32).tobytes())).lastrowid
                    ids.append(fid)
                    # Written before the commit: a crash leaves at worst an unreferenced file, overwritten when
                    # the id is handed out again (ids of rolled-back rows are reused, committed ones never).
                    tp = thumb_path(self.root, fid)
                    tp.parent.mkdir(parents=True, exist_ok=True)
                    tp.write_bytes(jpeg)
                self._db.execute("DELETE FROM skipped WHERE path=?", (path,))
                gen = self._bump()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._after_write(gen, removed=old, added=(ids, [f[1] for f in frames]))
            return ids

    def remove_source(self, path: str, skipped_reason: str | None = None, size: int = 0, mtime: float = 0) -> bool:
        """Drop a source (and, with a reason, remember the file as unreadable). True if it was indexed."""
        with self._lock:
            self._synced_vectors()
            self._db.execute("BEGIN IMMEDIATE")
            try:
                existed, old = self._drop(path)
                if skipped_reason is not None:
                    self._db.execute("INSERT OR REPLACE INTO skipped VALUES (?,?,?,?,?)",
                                     (path, skipped_reason, size, mtime, time.time()))
                else:
                    self._db.execute("DELETE FROM skipped WHERE path=?", (path,))
                gen = self._bump()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._after_write(gen, removed=old, added=([], []))
            return existed

    def _drop(self, path: str) -> tuple[bool, list[int]]:
        row = self._db.execute("SELECT id FROM sources WHERE path=?", (path,)).fetchone()
        if row is None:
            return False, []
        old = [r[0] for r in self._db.execute("SELECT id FROM frames WHERE source_id=?", (row[0],))]
        self._db.execute("DELETE FROM sources WHERE id=?", (row[0],))
        return True, old

    def _after_write(self, gen: int, removed: list[int], added: tuple[list[int], list[np.ndarray]]) -> None:
        if removed:
            self._vectors.remove_ids(np.asarray(removed, dtype=np.int64))
            for fid in removed:
                thumb_path(self.root, fid).unlink(missing_ok=True)
        self._add_vectors(*added)
        # Only this process writes (writer lock), so the generation after our commit is ours alone.
        self._generation = gen

    def set_meta(self, key: str, value) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
            self.meta[key] = value

    def close(self) -> None:
        with self._lock:
            self._db.close()
