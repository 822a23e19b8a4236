"""The catalog: an SQLite database of the indexed sources, their sampled frames (time and vector) and the files that
could not be read. It is the index's single source of truth: every change is one transaction that bumps a
generation number, so a run killed at any moment leaves whole sources or nothing, and readers in other processes
can tell that something changed. Frame ids are never reused (AUTOINCREMENT), which lets the FAISS cache catch up
exactly (vectors.VectorCache)."""
from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import StoreError, WriteError

CATALOG = "catalog.sqlite"
# The catalog's layout. An older one is upgraded when opened (MIGRATIONS); a newer one is refused.
SCHEMA_VERSION = 8

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE sources (
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
    indexed_at REAL NOT NULL,
    -- when the media was made (container or EXIF date or else mtime): UNIX time. No comma in a comment before a
    -- column: SQLite's DROP COLUMN cuts the text back to the last comma it sees.
    created REAL NOT NULL DEFAULT 0,
    hash TEXT,  -- content hash (ingest/copies.py): NULL until a file of the same size needs it (version 4)
    fingerprint TEXT,  -- size and sampled blocks (ingest/copies.py): tells a moved file (version 6)
    offline_since REAL  -- when its folder was first found missing or unreadable; NULL while it is there (version 6)
);
CREATE TABLE frames (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    t REAL NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX frames_by_source ON frames(source_id, t);
CREATE TABLE skipped (
    path TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL,
    at REAL NOT NULL
);
"""
# Version 4: other paths holding a source's exact bytes (ingest/copies.py), indexed once under the source.
COPIES_SCHEMA = """
CREATE TABLE IF NOT EXISTS copies (
    path TEXT PRIMARY KEY,
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    size INTEGER NOT NULL,
    mtime REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS copies_by_source ON copies(source_id);
"""

# Words read in frames (--ocr; format 5): the lines of each frame that has any, as JSON [{"text", "box": [x0, y0,
# x1, y1]}] with the box as fractions of the frame, and the same text in an FTS5 index (rowid = frame id) that folds
# case and accents. Both go with their frame (cascade and trigger). text_read lists the sources whose text was read,
# so that an index switched to reading text reads what it already holds.
WORDS_SCHEMA = """
CREATE TABLE IF NOT EXISTS frame_words (
    frame_id INTEGER PRIMARY KEY REFERENCES frames(id) ON DELETE CASCADE,
    words TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS words_fts USING fts5(text, tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS frame_words_gone AFTER DELETE ON frame_words BEGIN
    DELETE FROM words_fts WHERE rowid = old.frame_id;
END;
CREATE TABLE IF NOT EXISTS text_read (source_id INTEGER PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE);
"""

# Format 7: each frame's pixel signature (extract.pixels, sampled since format 7; a source indexed before has none
# and is paired with no other until it is indexed again), and the pairs of videos found to be one content in two
# encodings when the later of them was committed (a < b; a changed source loses its pairs, found again as it
# commits).
ENCODINGS_SCHEMA = """
CREATE TABLE IF NOT EXISTS frame_pixels (
    frame_id INTEGER PRIMARY KEY REFERENCES frames(id) ON DELETE CASCADE,
    pixels BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS encodings (
    a INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    b INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    PRIMARY KEY (a, b)
);
CREATE INDEX IF NOT EXISTS encodings_by_b ON encodings(b);
"""

# What is said (format 8): the lines of a video's subtitles and of its speech heard by an engine (transcript.py),
# each with its time span, its layer ("subtitle" or "said") and its origin (a sidecar file's name, a container
# track, an engine), and the same text in an FTS5 index (rowid = line id) that folds case and accents, as words_fts.
# Both go with their source (cascade and trigger). `transcribed` records, per source, the sidecar files its
# subtitles were read from (JSON {name: [size, mtime]}) and the engine that heard its speech (NULL: none), so that a
# changed sidecar, or an index switched to speech, reads again only what it must (ingest/transcripts.py).
LINES_SCHEMA = """
CREATE TABLE IF NOT EXISTS lines (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
    t_start REAL NOT NULL,
    t_end REAL NOT NULL,
    layer TEXT NOT NULL,
    origin TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lines_by_source ON lines(source_id, t_start);
CREATE VIRTUAL TABLE IF NOT EXISTS lines_fts USING fts5(text, tokenize='unicode61 remove_diacritics 2');
CREATE TRIGGER IF NOT EXISTS lines_gone AFTER DELETE ON lines BEGIN
    DELETE FROM lines_fts WHERE rowid = old.id;
END;
CREATE TABLE IF NOT EXISTS transcribed (
    source_id INTEGER PRIMARY KEY REFERENCES sources(id) ON DELETE CASCADE,
    sidecars TEXT NOT NULL,
    speech TEXT
);
"""


def _v1_to_v2(db: sqlite3.Connection) -> None:
    # Version 1 letterboxed every picture; version 2 records how pictures reach the model.
    db.execute("INSERT OR IGNORE INTO meta VALUES ('preprocess', ?)", (json.dumps("letterbox"),))


def _v2_to_v3(db: sqlite3.Connection) -> None:
    # Version 3 records when each source was made; what older versions indexed is dated by its file's mtime.
    if "created" not in {r[1] for r in db.execute("PRAGMA table_info(sources)")}:
        db.execute("ALTER TABLE sources ADD COLUMN created REAL NOT NULL DEFAULT 0")
        db.execute("UPDATE sources SET created = mtime")


def _v3_to_v4(db: sqlite3.Connection) -> None:
    # Version 4 knows byte copies: a content hash per source (computed when needed) and the copies' paths.
    if "hash" not in {r[1] for r in db.execute("PRAGMA table_info(sources)")}:
        db.execute("ALTER TABLE sources ADD COLUMN hash TEXT")
    _script(db, COPIES_SCHEMA)


def _v4_to_v5(db: sqlite3.Connection) -> None:
    # Version 5 can hold the words read in frames; no source of an older index has had its text read. (IF NOT
    # EXISTS: a catalog may claim an older version than its tables.)
    _script(db, WORDS_SCHEMA)


def _v5_to_v6(db: sqlite3.Connection) -> None:
    # Version 6 keeps sources whose drive is offline (ingest/plan.py) and knows moved files by a fingerprint,
    # computed for the sources indexed before on the next run that finds their file.
    columns = {r[1] for r in db.execute("PRAGMA table_info(sources)")}
    for column, kind in (("fingerprint", "TEXT"), ("offline_since", "REAL")):
        if column not in columns:
            db.execute(f"ALTER TABLE sources ADD COLUMN {column} {kind}")


def _v6_to_v7(db: sqlite3.Connection) -> None:
    _script(db, ENCODINGS_SCHEMA)


def _v7_to_v8(db: sqlite3.Connection) -> None:
    # Version 8 holds what is said; no source of an older index has had its subtitles read, so the next run reads
    # them (ingest/transcripts.py).
    _script(db, LINES_SCHEMA)


def _script(db: sqlite3.Connection, schema: str) -> None:
    # executescript would commit the caller's transaction; a trigger's body holds semicolons, so statements are cut
    # only where the next one begins.
    for statement in re.split(r";\s*\n(?=CREATE )", schema):
        if statement.strip():
            db.execute(statement)


# version → the step to the next one
MIGRATIONS = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4, 4: _v4_to_v5, 5: _v5_to_v6, 6: _v6_to_v7, 7: _v7_to_v8}


@dataclass(frozen=True)
class Source:
    """An indexed video or image."""

    id: int
    path: str  # absolute, symlinks resolved
    kind: str  # "video" or "image"
    size: int
    mtime: float
    duration: float  # seconds; 0 for images
    fps: float
    width: int
    height: int
    frames: int
    indexed_at: float
    created: float  # when the media was made: its container's or EXIF date where it has one, else its mtime
    hash: str | None = None  # content hash, computed only when another file of its size needs comparing
    fingerprint: str | None = None  # size and sampled blocks (ingest/copies.py): finds the file again if it moves
    offline_since: float | None = None  # UNIX time its folder was first found missing or unreadable; None if there

    @property
    def offline(self) -> bool:
        """Its file is on a drive or in a folder that could not be read: kept, but not there to play."""
        return self.offline_since is not None


@dataclass(frozen=True)
class Copy:
    """Another path holding a source's exact bytes: in the index, but not decoded or embedded again."""

    path: str
    source_id: int
    size: int
    mtime: float


@dataclass(frozen=True)
class SourceFilter:
    """Which sources a search may return, in the catalog's terms (search.source_filter makes one from a Query).
    Hashable: the frames it keeps are cached per filter and catalog generation (vectors.VectorCache)."""

    kind: str | None = None  # "video" or "image"
    folder: str | None = None  # an absolute, normalised path: the sources at it or under it
    created_from: float | None = None  # UNIX time, inclusive
    created_to: float | None = None  # UNIX time, exclusive
    min_duration: float | None = None  # seconds; either bound keeps videos only
    max_duration: float | None = None

    def where(self) -> tuple[str, list]:
        """An SQL condition on `sources s`, and its arguments."""
        conds, args = [], []
        if self.folder is not None:
            prefix = self.folder.rstrip("/") + "/"
            # substr, not LIKE: LIKE ignores ASCII case and reads % and _ in the path as wildcards.
            conds.append("(s.path = ? OR substr(s.path, 1, ?) = ?)")
            args += [self.folder, len(prefix), prefix]
        if self.min_duration is not None or self.max_duration is not None:
            conds.append("s.kind = 'video'")
        bounds = [("s.kind = ?", self.kind), ("s.created >= ?", self.created_from), ("s.created < ?", self.created_to),
                  ("s.duration >= ?", self.min_duration), ("s.duration <= ?", self.max_duration)]
        for cond, value in bounds:
            if value is not None:
                conds.append(cond)
                args.append(value)
        return " AND ".join(conds) or "1", args


@dataclass(frozen=True)
class Skipped:
    """A file that could not be indexed, remembered until it changes."""

    path: str
    reason: str
    size: int
    mtime: float
    at: float


@dataclass(frozen=True)
class Line:
    """A line of a video's transcript: said (heard by a speech engine) or shown (a subtitle) from start to end s."""

    id: int
    source_id: int
    start: float
    end: float
    layer: str  # "said" or "subtitle" (vidsearch.transcript)
    origin: str  # a sidecar file's name, a container track, or the speech engine
    text: str

    def as_json(self) -> dict:
        return {"start": self.start, "end": self.end, "layer": self.layer, "origin": self.origin, "text": self.text}


@dataclass(frozen=True)
class StoredFrame:
    """A sampled frame with what a search result needs of its source."""

    id: int
    source_id: int
    t: float
    path: str
    kind: str
    duration: float


def _in(n: int) -> str:
    return ",".join("?" * n)


def _slices(db: sqlite3.Connection, values: Sequence) -> Iterator[Sequence]:
    """`values` in slices that each fit in one statement under the connection's limit on SQL variables: 32,766 by
    default since SQLite 3.32, 999 before it, and lower in some builds (a 9-hour video sampled every second has more
    frames than that)."""
    limit = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) if hasattr(db, "getlimit") else 999  # Python < 3.11
    for start in range(0, len(values), limit):
        yield values[start:start + limit]


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit (transactions are explicit); shared between threads, one at a time (the writer's lock, or the pool
    # of reading connections).
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    db.execute("PRAGMA busy_timeout=30000")
    return db


class Catalog:
    """One open catalog. Thread-safe, and any number of processes may read while one writes (WAL mode).

    One connection writes, behind a lock; reads go to connections of their own, taken from a pool, so that a read
    never waits for a write in progress (moving its thumbnails, say) and sees the catalog as last committed. A thread
    inside `write` reads through the writing connection, and so sees what it wrote; one inside `snapshot` reads one
    state of the catalog through the connection it holds."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        path = self.root / CATALOG
        if not path.is_file():
            raise StoreError(f"No vidsearch index at {self.root} (run `vidsearch index PATH` first).")
        self._lock = threading.RLock()  # the writing connection
        self._local = threading.local()  # .db: the connection this thread's reads go to, inside write or snapshot
        self._idle: list[sqlite3.Connection] = []  # reading connections not in use ...
        self._readers: list[sqlite3.Connection] = []  # ... and all of them, to close
        self._pool_lock = threading.Lock()
        self._folders: tuple[int, list[str]] = (-1, [])
        try:
            self._db = _connect(path)
            self._db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
            self.meta = self.read_meta()
        except sqlite3.Error as e:
            with contextlib.suppress(AttributeError):
                self._db.close()
            # The first connection must create the catalog's shared-memory file, which a full disk refuses.
            raise WriteError(self.root, e, "opened") from e

    @classmethod
    def create(cls, root: str | os.PathLike, meta: dict) -> Catalog:
        """A new, empty catalog with these settings (model, dim, interval, ...)."""
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
                _script(db, SCHEMA + COPIES_SCHEMA + WORDS_SCHEMA + ENCODINGS_SCHEMA + LINES_SCHEMA)
                meta = {**meta, "format_version": SCHEMA_VERSION, "created_at": time.time(), "generation": 0}
                db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in meta.items()])
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

    def _migrate(self) -> None:
        """Bring an older catalog up to SCHEMA_VERSION, one step per transaction; refuse a newer one."""
        while True:
            row = self._db.execute("SELECT value FROM meta WHERE key='format_version'").fetchone()
            version = int(json.loads(row[0])) if row else 0
            if version == SCHEMA_VERSION:
                return
            if version > SCHEMA_VERSION or version not in MIGRATIONS:
                raise StoreError(f"The index at {self.root} has format {version}, which this vidsearch cannot read "
                                 f"(it reads formats 1 to {SCHEMA_VERSION}); use the vidsearch that made it, or "
                                 "re-index into a new folder.")
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if int(json.loads(self._db.execute(
                        "SELECT value FROM meta WHERE key='format_version'").fetchone()[0])) == version:
                    MIGRATIONS[version](self._db)  # another process may have done it meanwhile
                    self._db.execute("UPDATE meta SET value=? WHERE key='format_version'", (json.dumps(version + 1),))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # -- reading ---------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection this thread reads through: the one it holds (inside write or snapshot), else one of the
        pool's, given back afterwards."""
        held = getattr(self._local, "db", None)
        if held is not None:
            yield held
            return
        with self._pool_lock:
            db = self._idle.pop() if self._idle else None
        if db is None:
            db = _connect(self.root / CATALOG)
            db.execute("PRAGMA query_only=ON")
            with self._pool_lock:
                self._readers.append(db)
        try:
            yield db
        finally:
            if db.in_transaction:  # left by an error mid-snapshot: the next user must see the latest state
                db.execute("ROLLBACK")
            with self._pool_lock:
                self._idle.append(db)

    def _all(self, sql: str, args: Sequence = ()) -> list[tuple]:
        with self._reading() as db:
            return db.execute(sql, args).fetchall()

    def _all_in(self, sql: str, values: Sequence) -> list[tuple]:
        """The rows of a query whose only arguments are the values of its `IN ({})` list, however many."""
        with self._reading() as db:
            return [row for part in _slices(db, values)
                    for row in db.execute(sql.format(_in(len(part))), list(part)).fetchall()]

    def read_meta(self) -> dict:
        return {k: json.loads(v) for k, v in self._all("SELECT key, value FROM meta")}

    def generation(self) -> int:
        return int(json.loads(self._all("SELECT value FROM meta WHERE key='generation'")[0][0]))

    def sources(self) -> list[Source]:
        return [Source(*r) for r in self._all(f"SELECT {_columns(Source)} FROM sources ORDER BY path")]

    def source(self, source_id: int) -> Source | None:
        rows = self._all(f"SELECT {_columns(Source)} FROM sources WHERE id=?", (source_id,))
        return Source(*rows[0]) if rows else None

    def source_at(self, path: str) -> Source | None:
        rows = self._all(f"SELECT {_columns(Source)} FROM sources WHERE path=?", (path,))
        return Source(*rows[0]) if rows else None

    def folders(self) -> list[str]:
        """The folders that hold indexed sources, sorted (kept until the catalog changes: a page lists them)."""
        with self.snapshot() as gen:
            folders = self._folders  # one read: another thread may replace it meanwhile
            if folders[0] != gen:
                folders = (gen, sorted({os.path.dirname(r[0]) for r in self._all("SELECT path FROM sources")}))
                self._folders = folders
            return list(folders[1])

    def skipped(self) -> list[Skipped]:
        return [Skipped(*r) for r in self._all(f"SELECT {_columns(Skipped)} FROM skipped ORDER BY path")]

    def counts(self) -> dict:
        (row,) = self._all(
            "SELECT (SELECT count(*) FROM sources), (SELECT count(*) FROM frames),"
            " (SELECT count(*) FROM sources WHERE kind='video'), (SELECT count(*) FROM sources WHERE kind='image'),"
            " (SELECT count(*) FROM skipped)")
        counts = dict(zip(("sources", "frames", "videos", "images", "skipped"), row))
        return {**counts, "copies": self._all("SELECT count(*) FROM copies")[0][0]}

    def copies(self, source_id: int | None = None) -> list[Copy]:
        """The byte copies of one source, or of all, by path."""
        where, args = ("WHERE source_id=?", (source_id,)) if source_id is not None else ("", ())
        return [Copy(*r) for r in self._all(f"SELECT {_columns(Copy)} FROM copies {where} ORDER BY path", args)]

    def copy_paths(self, source_paths: Sequence[str]) -> dict[str, list[str]]:
        """{source path: its copies' paths, sorted} for those of these sources that have copies."""
        rows = self._all_in("SELECT s.path, c.path FROM copies c JOIN sources s ON s.id = c.source_id "
                            "WHERE s.path IN ({}) ORDER BY c.path", list(source_paths))
        out: dict[str, list[str]] = {}
        for source, copy in rows:
            out.setdefault(source, []).append(copy)
        return out

    def frames(self, ids: Sequence[int]) -> dict[int, StoredFrame]:
        """The frames among `ids` that are still in the catalog."""
        if not len(ids):
            return {}
        rows = self._all_in("SELECT f.id, f.source_id, f.t, s.path, s.kind, s.duration FROM frames f "
                            "JOIN sources s ON s.id = f.source_id WHERE f.id IN ({})", [int(i) for i in ids])
        return {r[0]: StoredFrame(*r) for r in rows}

    def vectors(self, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of the frames among `ids` that are still in the catalog."""
        if not len(ids):
            return {}
        rows = self._all_in("SELECT id, vector FROM frames WHERE id IN ({})", [int(i) for i in ids])
        return {r[0]: np.frombuffer(r[1], dtype=np.float32) for r in rows}

    def source_frames(self, source_id: int) -> tuple[list[int], np.ndarray, np.ndarray]:
        """(frame ids, times, vectors) of one source in time order."""
        rows = self._all("SELECT id, t, vector FROM frames WHERE source_id=? ORDER BY t", (source_id,))
        dim = int(self.meta["dim"])
        vecs = np.stack([np.frombuffer(r[2], np.float32) for r in rows]) if rows else np.zeros((0, dim), np.float32)
        return [r[0] for r in rows], np.array([r[1] for r in rows], dtype=np.float64), vecs

    def source_pixels(self, source_id: int) -> tuple[np.ndarray, np.ndarray] | None:
        """(times, signatures as rows of uint8) of a source's frames in time order; None unless every frame has one
        (a source indexed before format 7)."""
        rows = self._all("SELECT t, pixels FROM frames LEFT JOIN frame_pixels ON frame_id = id WHERE source_id=? "
                         "ORDER BY t", (source_id,))
        if not rows or any(r[1] is None for r in rows):
            return None
        return np.array([r[0] for r in rows]), np.stack([np.frombuffer(r[1], np.uint8) for r in rows])

    def videos_lasting(self, duration: float, within: float, but: int) -> list[tuple[int, bytes]]:
        """The videos (other than `but`) whose duration is within `within` s of `duration` and whose frames have
        pixel signatures: (id, its first frame's signature) each."""
        return self._all("SELECT s.id, p.pixels FROM sources s JOIN frames f ON f.source_id = s.id AND f.t = "
                         "(SELECT MIN(t) FROM frames WHERE source_id = s.id) JOIN frame_pixels p ON p.frame_id = f.id "
                         "WHERE s.kind = 'video' AND s.id != ? AND s.duration BETWEEN ? AND ?",
                         (but, duration - within, duration + within))

    def encodings(self, source_ids: Sequence[int]) -> dict[int, set[int]]:
        """Of these sources, each one's other encodings (the sources found to be the same content in their pixels
        when indexed: see ENCODINGS_SCHEMA); sources with none are left out."""
        out: dict[int, set[int]] = {}
        ids = list(dict.fromkeys(source_ids))
        wanted = set(ids)
        for column in ("a", "b"):
            for a, b in self._all_in(f"SELECT a, b FROM encodings WHERE {column} IN ({{}})", ids):
                out.setdefault(a, set()).add(b)
                out.setdefault(b, set()).add(a)
        return {s: others for s, others in out.items() if s in wanted}

    def frame_ids(self) -> np.ndarray:
        with self._reading() as db:
            return np.fromiter((r[0] for r in db.execute("SELECT id FROM frames")), dtype=np.int64)

    def kept_by(self, where: SourceFilter) -> tuple[int, int, int]:
        """(frames the filter keeps, frames in all, the highest frame id): sums over the sources, no frame read."""
        cond, args = where.where()
        (row,) = self._all(f"SELECT coalesce(sum(CASE WHEN {cond} THEN s.frames ELSE 0 END), 0),"
                           " coalesce(sum(s.frames), 0), (SELECT coalesce(max(id), 0) FROM frames) FROM sources s",
                           args)
        return int(row[0]), int(row[1]), int(row[2])

    def frame_ids_by(self, where: SourceFilter, keep: bool = True) -> np.ndarray:
        """The ids of the frames whose source the filter keeps (or, keep=False, leaves out)."""
        cond, args = where.where()
        # Sources first, then their frames through frames_by_source: a join would let SQLite scan every frame.
        cond = cond if keep else f"NOT ({cond})"
        sql = f"SELECT id FROM frames WHERE source_id IN (SELECT s.id FROM sources s WHERE {cond})"
        with self._reading() as db:
            return np.fromiter((r[0] for r in db.execute(sql, args)), dtype=np.int64)

    def vectors_by(self, where: SourceFilter) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the frames whose source the filter keeps."""
        cond, args = where.where()
        rows = self._all(f"SELECT id, vector FROM frames WHERE source_id IN (SELECT s.id FROM sources s WHERE {cond})",
                         args)
        dim = int(self.meta["dim"])
        vecs = (np.frombuffer(b"".join(r[1] for r in rows), np.float32).reshape(len(rows), dim) if rows
                else np.zeros((0, dim), np.float32))
        return np.array([r[0] for r in rows], dtype=np.int64), vecs

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[int]:
        """A read transaction: what this thread reads inside it is one state of the catalog, whose generation it
        yields. Inside a write or another snapshot, it is that one's state."""
        if getattr(self._local, "db", None) is not None:
            yield self.generation()
            return
        with self._reading() as db:
            db.execute("BEGIN")
            self._local.db = db
            try:
                yield self.generation()
            finally:
                self._local.db = None
                db.execute("COMMIT")

    # -- writing (one writer at a time: see ingest.WriterLock) ------------------------------------------------

    @contextlib.contextmanager
    def write(self) -> Iterator[list[int]]:
        """One write transaction that bumps the generation. Yields [generation before]; after the commit the list
        also holds the generation after. A failed write (a full disk) raises WriteError; the catalog stays as it
        was."""
        with self._lock:
            held, self._local.db = getattr(self._local, "db", None), self._db  # this thread reads what it writes
            try:
                self._db.execute("BEGIN IMMEDIATE")
                gens = [self.generation()]
                yield gens
                self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key='generation'")
                self._db.execute("COMMIT")
            except BaseException as e:
                if self._db.in_transaction:  # SQLite may have rolled back itself (SQLITE_FULL)
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                if isinstance(e, (sqlite3.Error, OSError)):
                    raise WriteError(self.root, e) from e
                raise
            finally:
                self._local.db = held
            gens.append(gens[0] + 1)

    def add_source(self, path: str, kind: str, size: int, mtime: float, duration: float, fps: float, width: int,
                   height: int, times: Sequence[float], vectors: Sequence[np.ndarray],
                   created: float | None = None, pixels: Sequence[bytes] | None = None) -> list[int]:
        """Insert a source and its frames (inside `write`); their new frame ids in order. `created`: when the media
        was made (UNIX time), by default its mtime. `pixels`: the frames' pixel signatures (extract.pixels)."""
        cur = self._db.execute(
            "INSERT INTO sources (path, kind, size, mtime, duration, fps, width, height, frames, indexed_at, created)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?)", (path, kind, size, mtime, duration, fps, width, height, len(times),
                                                 time.time(), mtime if created is None else created))
        ids = [self._db.execute("INSERT INTO frames (source_id, t, vector) VALUES (?,?,?)",
                                (cur.lastrowid, t, np.asarray(v, np.float32).tobytes())).lastrowid
               for t, v in zip(times, vectors)]
        if pixels is not None and all(pixels):
            self._db.executemany("INSERT INTO frame_pixels VALUES (?,?)", zip(ids, pixels))
        return ids

    def add_encodings(self, source_id: int, others: Sequence[int]) -> None:
        """Record `source_id` as one content with each of `others` (inside `write`)."""
        self._db.executemany("INSERT OR IGNORE INTO encodings VALUES (?,?)",
                             [(min(source_id, o), max(source_id, o)) for o in others])

    def drop_source(self, path: str) -> tuple[bool, list[int]]:
        """Delete a source and its frames (inside `write`): (whether it was there, its frame ids)."""
        row = self._db.execute("SELECT id FROM sources WHERE path=?", (path,)).fetchone()
        if row is None:
            return False, []
        old = [r[0] for r in self._db.execute("SELECT id FROM frames WHERE source_id=?", (row[0],))]
        self._db.execute("DELETE FROM sources WHERE id=?", (row[0],))
        return True, old

    def set_hash(self, path: str, content_hash: str) -> None:
        """Remember a source's content hash (a cache of its bytes: needs no generation bump)."""
        with self._lock:
            try:
                self._db.execute("UPDATE sources SET hash=? WHERE path=?", (content_hash, path))
            except sqlite3.Error as e:
                raise WriteError(self.root, e) from e

    def add_copy(self, path: str, of: str, size: int, mtime: float) -> None:
        """(inside `write`) Record `path` as a byte copy of the source at `of`."""
        self._db.execute("INSERT OR REPLACE INTO copies SELECT ?, id, ?, ? FROM sources WHERE path=?",
                         (path, size, mtime, of))

    def drop_copy(self, path: str) -> bool:
        """(inside `write`) Forget a copy; True if `path` was one."""
        return self._db.execute("DELETE FROM copies WHERE path=?", (path,)).rowcount > 0

    def promote(self, copy: Copy) -> None:
        """(inside `write`) The copy's source moves to the copy's path; its id, frames and vectors stay."""
        self._db.execute("DELETE FROM copies WHERE path=?", (copy.path,))
        self._db.execute("UPDATE sources SET path=?, size=?, mtime=? WHERE id=?",
                         (copy.path, copy.size, copy.mtime, copy.source_id))

    def remember_skip(self, path: str, reason: str, size: int, mtime: float) -> None:
        """(inside `write`) Remember a file as unreadable until its size or mtime changes."""
        self._db.execute("INSERT OR REPLACE INTO skipped VALUES (?,?,?,?,?)", (path, reason, size, mtime, time.time()))

    def forget_skip(self, path: str) -> None:
        """(inside `write`)"""
        self._db.execute("DELETE FROM skipped WHERE path=?", (path,))

    # -- words read in frames (format 5) ---------------------------------------------------------------------------

    def add_words(self, path: str, words: dict[int, list[dict]]) -> None:
        """(inside `write`) Store the lines read in frames of the source at `path` (frame id -> [{"text", "box"}];
        frames with none are left out) and record that its text was read."""
        for fid, lines in words.items():
            if lines:
                self._db.execute("INSERT INTO frame_words VALUES (?, ?)", (fid, json.dumps(lines)))
                self._db.execute("INSERT INTO words_fts (rowid, text) VALUES (?, ?)",
                                 (fid, "\n".join(w["text"] for w in lines)))
        self._db.execute("INSERT OR IGNORE INTO text_read SELECT id FROM sources WHERE path=?", (path,))

    def text_unread(self) -> list[Source]:
        """The sources whose text was never read, by path."""
        return [Source(*r) for r in self._all(f"SELECT {_columns(Source)} FROM sources WHERE id NOT IN "
                                              "(SELECT source_id FROM text_read) ORDER BY path")]

    def text_matches(self, expression: str, where: SourceFilter | None, limit: int) -> list[int]:
        """The ids of at most `limit` frames whose words match an FTS5 expression (ocr.match_expression), best
        first, among the sources the filter keeps."""
        cond, args = (where or SourceFilter()).where()
        rows = self._all("SELECT words_fts.rowid FROM words_fts JOIN frames f ON f.id = words_fts.rowid "
                         f"JOIN sources s ON s.id = f.source_id WHERE words_fts MATCH ? AND {cond} "
                         "ORDER BY words_fts.rank LIMIT ?", [expression, *args, limit])
        return [r[0] for r in rows]

    def frame_words(self, ids: Sequence[int]) -> dict[int, list[dict]]:
        """The lines read in the frames among `ids` that have any."""
        if not len(ids):
            return {}
        rows = self._all_in("SELECT frame_id, words FROM frame_words WHERE frame_id IN ({})", [int(i) for i in ids])
        return {r[0]: json.loads(r[1]) for r in rows}

    def text_counts(self) -> dict:
        (row,) = self._all("SELECT (SELECT count(*) FROM frame_words), (SELECT count(*) FROM text_read)")
        return {"frames_with_words": row[0], "sources_text_read": row[1]}

    def add_to_meta(self, key: str, delta: int) -> None:
        """(inside `write`) Add to a count kept in the meta table; nothing if the key is not there."""
        self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + ? WHERE key=?", (delta, key))

    # -- offline sources and moves (format 6) --------------------------------------------------------------------

    def set_fingerprint(self, path: str, fingerprint: str) -> None:
        """Remember a source's fingerprint (a cache of its bytes, as set_hash: no generation bump)."""
        with self._lock:
            try:
                self._db.execute("UPDATE sources SET fingerprint=? WHERE path=?", (fingerprint, path))
            except sqlite3.Error as e:
                raise WriteError(self.root, e) from e

    def set_fingerprints(self, pairs: Sequence[tuple[str, str]]) -> None:
        """(inside `write`) Many sources' fingerprints at once: [(path, fingerprint)]."""
        self._db.executemany("UPDATE sources SET fingerprint=? WHERE path=?", [(fp, p) for p, fp in pairs])

    def set_offline(self, paths: Sequence[str], since: float) -> None:
        """(inside `write`) Mark sources offline (those already offline keep their time)."""
        self._db.executemany("UPDATE sources SET offline_since=? WHERE path=? AND offline_since IS NULL",
                             [(since, p) for p in paths])

    def set_online(self, paths: Sequence[str]) -> None:
        """(inside `write`) Their files are there again."""
        self._db.executemany("UPDATE sources SET offline_since=NULL WHERE path=?", [(p,) for p in paths])

    def move_source(self, path: str, to: str, size: int, mtime: float) -> None:
        """(inside `write`) The source at `path` is now the file at `to`; its id, frames, vectors and words stay.
        Its content hash is forgotten: the fingerprint that matched is not proof of equal bytes."""
        self._db.execute("UPDATE sources SET path=?, size=?, mtime=?, hash=NULL, offline_since=NULL WHERE path=?",
                         (to, size, mtime, path))

    def offline_ids(self) -> set[int]:
        return {r[0] for r in self._all("SELECT id FROM sources WHERE offline_since IS NOT NULL")}

    # -- what is said: subtitles and speech (format 7) ----------------------------------------------------------

    def transcribed(self) -> dict[int, tuple[dict[str, tuple[int, float]], str | None]]:
        """{source id: (its sidecar files' stamps when its subtitles were read, the engine that heard its speech or
        None)} for the sources whose subtitles were read."""
        return {r[0]: ({k: tuple(v) for k, v in json.loads(r[1]).items()}, r[2])
                for r in self._all("SELECT source_id, sidecars, speech FROM transcribed")}

    def set_lines(self, source_id: int, lines: Sequence[tuple[float, float, str, str, str]], layers: Sequence[str],
                  sidecars: dict | None, speech: str | None) -> None:
        """(inside `write`) Replace the lines of these `layers` of a source with `lines` [(start, end, layer,
        origin, text)], and record what was read: `sidecars` (its subtitle files' stamps) when its subtitles were,
        `speech` (the engine) when its speech was heard."""
        self._db.executemany("DELETE FROM lines WHERE source_id=? AND layer=?", [(source_id, x) for x in layers])
        for start, end, layer, origin, text in lines:
            rowid = self._db.execute("INSERT INTO lines (source_id, t_start, t_end, layer, origin, text) "
                                     "VALUES (?,?,?,?,?,?)", (source_id, start, end, layer, origin, text)).lastrowid
            self._db.execute("INSERT INTO lines_fts (rowid, text) VALUES (?, ?)", (rowid, text))
        stamps = None if sidecars is None else json.dumps(sidecars)
        self._db.execute("INSERT INTO transcribed VALUES (?, coalesce(?, '{}'), ?) ON CONFLICT (source_id) DO UPDATE "
                         "SET sidecars = coalesce(?, sidecars), speech = coalesce(?, speech)",
                         (source_id, stamps, speech, stamps, speech))

    def lines_of(self, source_id: int) -> list[Line]:
        """A source's transcript lines by time."""
        return [Line(*r) for r in self._all("SELECT id, source_id, t_start, t_end, layer, origin, text FROM lines "
                                            "WHERE source_id=? ORDER BY t_start, id", (source_id,))]

    def line_matches(self, expression: str, where: SourceFilter | None, limit: int) -> list[Line]:
        """At most `limit` lines whose text matches an FTS5 expression (ocr.match_expression), best first, among
        the sources the filter keeps."""
        cond, args = (where or SourceFilter()).where()
        rows = self._all("SELECT l.id, l.source_id, l.t_start, l.t_end, l.layer, l.origin, l.text FROM lines_fts "
                         "JOIN lines l ON l.id = lines_fts.rowid JOIN sources s ON s.id = l.source_id "
                         f"WHERE lines_fts MATCH ? AND {cond} ORDER BY lines_fts.rank LIMIT ?",
                         [expression, *args, limit])
        return [Line(*r) for r in rows]

    def line_frames(self, line_ids: Sequence[int]) -> list[tuple[int, int]]:
        """[(line id, frame id)] of the frames each line covers: from the frame on screen when it starts (the last
        sampled at or before its start) to its end; in the order of `line_ids`, then of time."""
        if not len(line_ids):
            return []
        rows = self._all_in(
            "SELECT l.id, f.id FROM lines l JOIN frames f ON f.source_id = l.source_id AND f.t < l.t_end AND f.t >= "
            "coalesce((SELECT max(g.t) FROM frames g WHERE g.source_id = l.source_id AND g.t <= l.t_start), 0) "
            "WHERE l.id IN ({}) ORDER BY f.t", [int(i) for i in line_ids])
        order = {line_id: n for n, line_id in enumerate(line_ids)}
        return sorted(rows, key=lambda r: order[r[0]])

    def line_counts(self) -> dict:
        (row,) = self._all("SELECT (SELECT count(*) FROM lines WHERE layer='subtitle'), "
                           "(SELECT count(*) FROM lines WHERE layer='said'), (SELECT count(*) FROM transcribed)")
        return {"subtitle_lines": row[0], "said_lines": row[1], "sources_transcribed": row[2]}

    def set_meta(self, key: str, value) -> None:
        with self._lock:
            try:
                self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))
            except sqlite3.Error as e:
                raise WriteError(self.root, e) from e
            self.meta[key] = value

    def close(self) -> None:
        with self._lock, self._pool_lock:
            for db in self._readers:
                db.close()
            self._readers.clear()
            self._idle.clear()
            self._db.close()


def _columns(row_type) -> str:
    return ", ".join(row_type.__dataclass_fields__)
