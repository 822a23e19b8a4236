"""The index folder: a SQLite catalog (sources, frames and their vectors), a FAISS index, and thumbnails.

The catalog is the single source of truth and every change to it is one transaction per source, so a run killed
at any moment leaves whole sources or nothing. The FAISS file is a cache of the catalog's vectors, replaced
atomically; whoever opens the index brings it up to date from the catalog (only the difference), so a stale or
missing FAISS file is never wrong, only slower to open. Frame ids are never reused (AUTOINCREMENT), which is what
makes that difference exact.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .errors import StoreError, WriteError
from .vectors import Vectors, kind_for

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


def _unblob(blobs: list[bytes]) -> np.ndarray:
    return np.stack([np.frombuffer(b, dtype=np.float32) for b in blobs]) if blobs else np.zeros((0, 0), np.float32)


def staging_dir(root: Path) -> Path:
    """Where thumbnails wait, as files, for their source's commit: a long video's stay on disk, not in memory."""
    return root / THUMBS / "staging"


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
        try:
            self._db = sqlite3.connect(db, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA busy_timeout=30000")
            self.meta = self.read_meta()
        except sqlite3.Error as e:
            with contextlib.suppress(AttributeError):
                self._db.close()
            # The first connection must create the catalog's shared-memory file, which a full disk refuses.
            raise WriteError(self.root, e, "opened") from e
        if int(self.meta.get("format_version", 0)) != FORMAT_VERSION:
            raise StoreError(f"The index at {self.root} has format {self.meta.get('format_version')}; "
                              f"this vidsearch reads format {FORMAT_VERSION}. Re-index into a new folder.")
        self.dim = int(self.meta["dim"])
        self._vectors: Vectors | None = None
        self._vectors_file: tuple[int, int] | None = None  # (mtime_ns, size) of the FAISS file loaded
        self._generation = -1  # catalog generation that self._vectors reflects
        self._sample, self._sample_gen = np.zeros((0, self.dim), np.float32), -1

    @classmethod
    def create(cls, root: str | os.PathLike, *, model: str, pretrained: str, dim: int, interval: float,
               min_score: float, preprocess: str = "model") -> "Store":
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        # Built under another name and renamed into place: a run killed while creating leaves no catalog at all,
        # rather than a file without tables that could never be opened.
        tmp = root / (CATALOG + ".new")
        leftovers = (tmp, tmp.with_name(tmp.name + "-wal"), tmp.with_name(tmp.name + "-shm"))
        for leftover in leftovers:
            leftover.unlink(missing_ok=True)
        try:
            db = sqlite3.connect(tmp, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer, nor the writer them
                db.execute("BEGIN IMMEDIATE")
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                meta = {"model": model, "pretrained": pretrained, "dim": dim, "interval": interval,
                        "preprocess": preprocess, "min_score": min_score, "format_version": FORMAT_VERSION, "created_at": time.time(),
                        "generation": 0}
                for k, v in meta.items():
                    db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (k, json.dumps(v)))
                db.execute("COMMIT")
            finally:
                db.close()  # the last connection to close folds the WAL back into the file
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        except (sqlite3.Error, OSError) as e:
            for leftover in leftovers:
                leftover.unlink(missing_ok=True)
            raise WriteError(root, e) from e
        os.replace(tmp, root / CATALOG)
        return cls(root)

    @staticmethod
    def exists(root: str | os.PathLike) -> bool:
        return (Path(root) / CATALOG).is_file()

    # -- reading ---------------------------------------------------------------------------------------------

    def read_meta(self) -> dict:
        with self._lock:
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

    def frame_vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        if not ids:
            return {}
        with self._lock:
            rows = self._db.execute("SELECT id, vector FROM frames WHERE id IN (%s)" % ",".join("?" * len(ids)),
                                    [int(i) for i in ids]).fetchall()
        return {r[0]: np.frombuffer(r[1], dtype=np.float32) for r in rows}

    def source_frames(self, source_id: int) -> tuple[list[int], np.ndarray, np.ndarray]:
        """(frame ids, times, vectors) of one source in time order."""
        with self._lock:
            rows = self._db.execute("SELECT id, t, vector FROM frames WHERE source_id=? ORDER BY t",
                                    (source_id,)).fetchall()
        vecs = _unblob([r[2] for r in rows]) if rows else np.zeros((0, self.dim), np.float32)
        return [r[0] for r in rows], np.array([r[1] for r in rows], dtype=np.float64), vecs

    def sample_vectors(self, n: int = 5000) -> np.ndarray:
        """Up to n stored vectors picked at random (fixed seed), kept until the catalog changes: what a query's
        scores over the whole index look like, for relative scores."""
        with self._lock:
            gen = self.generation()
            if self._sample_gen != gen:
                ids = np.fromiter((r[0] for r in self._db.execute("SELECT id FROM frames")), dtype=np.int64)
                if len(ids) > n:
                    ids = np.random.default_rng(0).choice(ids, n, replace=False)
                vecs = self.frame_vectors(ids.tolist())
                self._sample = np.stack(list(vecs.values())) if vecs else np.zeros((0, self.dim), np.float32)
                self._sample_gen = gen
            return self._sample

    def size_on_disk(self) -> int:
        total = 0
        # A writer renames and removes thumbnails meanwhile: what vanishes mid-walk is not counted, not an error.
        for folder, _, files in os.walk(self.root):
            for name in files:
                with contextlib.suppress(FileNotFoundError):
                    total += os.stat(os.path.join(folder, name)).st_size
        return total

    # -- vectors ---------------------------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Inner-product search (cosine, as all vectors are normalised) over the catalog as last committed."""
        with self._lock:
            vectors = self._synced_vectors()
            if vectors.ntotal == 0:
                return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
            return vectors.search(queries, min(k, vectors.ntotal), read=self.frame_vectors)  # re-ranks if compressed

    @property
    def approximate(self) -> bool:
        with self._lock:
            return self._synced_vectors().approximate

    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = (self.root / VECTORS).stat()
            return st.st_mtime_ns, st.st_size
        except FileNotFoundError:
            return None

    def _synced_vectors(self) -> Vectors:
        """The in-memory FAISS index, brought up to date with the catalog if another process changed it."""
        stamp = self._file_stamp()
        if self._vectors is None or stamp != self._vectors_file:
            # First use, or the writer saved a newer file (perhaps of another kind): start from it.
            try:
                self._vectors = Vectors.load(self.root / VECTORS) if stamp else Vectors.empty(self.dim)
            except RuntimeError:  # cut short (a full disk can cost FAISS the file's tail): the catalog rebuilds it
                self._vectors = Vectors.empty(self.dim)
            self._vectors_file = stamp
            self._generation = -1
        if self.generation() == self._generation:
            return self._vectors
        # One read transaction: the generation and the rows come from the same snapshot.
        self._db.execute("BEGIN")
        try:
            gen = int(json.loads(self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0]))
            have = self._vectors.ids()
            want = np.fromiter((r[0] for r in self._db.execute("SELECT id FROM frames")), dtype=np.int64)
            self._vectors.remove(np.setdiff1d(have, want, assume_unique=True))
            missing = np.setdiff1d(want, have, assume_unique=True)
            if not len(have) and kind_for(len(want)) == "ivfpq":
                # No usable file: build the compressed index straight away rather than hold every float in RAM.
                self._vectors, missing = Vectors.build("ivfpq", self.dim, want, self.frame_vectors), missing[:0]
            for start in range(0, len(missing), 10000):
                chunk = missing[start:start + 10000].tolist()
                rows = self._db.execute("SELECT id, vector FROM frames WHERE id IN (%s)" % ",".join("?" * len(chunk)),
                                        chunk).fetchall()
                self._vectors.add([r[0] for r in rows], _unblob([r[1] for r in rows]))
        finally:
            self._db.execute("COMMIT")
        self._generation = gen
        return self._vectors

    def save_vectors(self) -> None:
        """Write the FAISS file (exact, IVF or IVF-PQ, as the size calls for) atomically."""
        with self._lock:
            self._vectors = self._synced_vectors().tuned(read=self.frame_vectors)
            try:
                self._vectors.save(self.root / VECTORS)
            except (RuntimeError, OSError) as e:  # FAISS reports a failed write as a RuntimeError
                (self.root / (VECTORS + ".tmp")).unlink(missing_ok=True)  # Vectors.save's temporary file
                raise WriteError(self.root, e) from e
            self._vectors_file = self._file_stamp()

    # -- writing (one writer at a time: see ingest.WriterLock) ------------------------------------------------

    @contextlib.contextmanager
    def _write(self):
        """One write transaction that bumps the generation; yields a dict in which the body records the frame ids
        it removed ("removed"), the (ids, vectors) it added ("added"), applied to FAISS after the commit, and the
        thumbnails it put in place ("thumbs"), removed again if the transaction fails. A failed write (a full
        disk) raises WriteError and leaves the catalog as it was."""
        with self._lock:
            self._synced_vectors()
            change: dict = {"removed": [], "added": ([], []), "thumbs": []}
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield change
                self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
                gen = int(self._db.execute("SELECT value FROM meta WHERE key='generation'").fetchone()[0])
                self._db.execute("COMMIT")
            except BaseException as e:
                if self._db.in_transaction:  # SQLite may have rolled back itself (SQLITE_FULL)
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                for tp in change["thumbs"]:
                    tp.unlink(missing_ok=True)
                if isinstance(e, (sqlite3.Error, OSError)):
                    raise WriteError(self.root, e) from e
                raise
            self._vectors.remove(change["removed"])
            for fid in change["removed"]:
                thumb_path(self.root, fid).unlink(missing_ok=True)
            ids, vecs = change["added"]
            if ids:
                self._vectors.add(ids, np.stack(vecs))
            # Only this process writes (writer lock), so the generation after our commit is ours alone.
            self._generation = gen

    def put_source(self, path: str, kind: str, size: int, mtime: float, duration: float, fps: float,
                   width: int, height: int, frames: Sequence[tuple[float, np.ndarray, Path]]) -> list[int]:
        """Replace whatever the catalog holds for `path` with these frames (t, vector, staged thumbnail file),
        atomically."""
        with self._write() as change:
            _, change["removed"] = self._drop(path)
            cur = self._db.execute(
                "INSERT INTO sources (path, kind, size, mtime, duration, fps, width, height, frames, indexed_at)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (path, kind, size, mtime, duration, fps, width, height, len(frames), time.time()))
            ids = []
            for t, vec, staged in frames:
                fid = self._db.execute("INSERT INTO frames (source_id, t, vector) VALUES (?,?,?)",
                                       (cur.lastrowid, t, vec.astype(np.float32).tobytes())).lastrowid
                ids.append(fid)
                # Written before the commit: a crash leaves at worst an unreferenced file, overwritten when
                # the id is handed out again (ids of rolled-back rows are reused, committed ones never).
                tp = thumb_path(self.root, fid)
                tp.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, tp)
                change["thumbs"].append(tp)
            self._db.execute("DELETE FROM skipped WHERE path=?", (path,))
            change["added"] = (ids, [f[1] for f in frames])
        return ids

    def remove_source(self, path: str, skipped_reason: str | None = None, size: int = 0, mtime: float = 0) -> bool:
        """Drop a source (and, with a reason, remember the file as unreadable). True if it was indexed."""
        with self._write() as change:
            existed, change["removed"] = self._drop(path)
            if skipped_reason is not None:
                self._db.execute("INSERT OR REPLACE INTO skipped VALUES (?,?,?,?,?)",
                                 (path, skipped_reason, size, mtime, time.time()))
            else:
                self._db.execute("DELETE FROM skipped WHERE path=?", (path,))
        return existed

    def _drop(self, path: str) -> tuple[bool, list[int]]:
        row = self._db.execute("SELECT id FROM sources WHERE path=?", (path,)).fetchone()
        if row is None:
            return False, []
        old = [r[0] for r in self._db.execute("SELECT id FROM frames WHERE source_id=?", (row[0],))]
        self._db.execute("DELETE FROM sources WHERE id=?", (row[0],))
        return True, old

    def set_meta(self, key: str, value) -> None:
        with self._lock:
            try:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
            except sqlite3.Error as e:
                raise WriteError(self.root, e) from e
            self.meta[key] = value

    def close(self) -> None:
        with self._lock:
            self._db.close()
