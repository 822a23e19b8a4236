"""The index folder: the catalog (SQLite, the single source of truth), the FAISS cache of its vectors, and a JPEG
thumbnail per frame. Writing a source puts its rows and thumbnails in place in one transaction, then brings the
cache along."""
from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .catalog import Catalog
from .errors import WriteError
from .extract.pixels import same_content, same_frame
from .vectors import STATE, VECTORS, VectorCache

THUMBS = "thumbs"
THUMB_BYTES = "thumbnail_bytes"  # catalog meta: the bytes of the committed thumbnails, kept at every commit


def staging_dir(root: Path) -> Path:
    """Where thumbnails wait, as files, for their source's commit: a long video's stay on disk, not in memory."""
    return root / THUMBS / "staging"


def file_unchanged(path: str, size: int, mtime: float) -> bool:
    """Whether the file at `path` is there with this size and mtime."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (st.st_size, st.st_mtime) == (size, mtime)


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return 0


def _walked(folder: Path, skip: str = "") -> int:
    """The bytes of the files under `folder` (but under `skip`). A writer renames and removes files meanwhile: what
    vanishes mid-walk is not counted, not an error."""
    total = 0
    for parent, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if os.path.join(parent, d) != skip]
        total += sum(_size(Path(parent, name)) for name in files)
    return total


def thumb_path(root: Path, frame_id: int) -> Path:
    return root / THUMBS / str(frame_id // 1000) / f"{frame_id}.jpg"


class Store:
    """One open index folder. Thread-safe; any number of processes may read while one writes (ingest.WriterLock)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.catalog = Catalog(self.root)
        self.vectors = VectorCache(self.root, self.catalog)

    @classmethod
    def create(cls, root: str | os.PathLike, **meta) -> Store:
        """A new index folder with these settings (model, pretrained, dim, interval, preprocess, min_score)."""
        for cache in (VECTORS, STATE):  # of a catalog no longer there: its frame ids would be taken for the new one's
            (Path(root) / cache).unlink(missing_ok=True)
        Catalog.create(root, {**meta, THUMB_BYTES: 0}).close()
        return cls(root)

    @staticmethod
    def exists(root: str | os.PathLike) -> bool:
        return Catalog.exists(root)

    def thumbnail(self, frame_id: int) -> Path:
        return thumb_path(self.root, frame_id)

    def put_source(self, path: str, kind: str, size: int, mtime: float, duration: float, fps: float,
                   width: int, height: int, frames: Sequence[tuple[float, np.ndarray, Path]],
                   created: float | None = None, content_hash: str | None = None,
                   words: Sequence[list[dict]] | None = None, fingerprint: str | None = None,
                   pixels: Sequence[bytes] | None = None) -> list[int]:
        """Replace whatever the index holds for `path` with these frames (t, vector, staged thumbnail file),
        atomically. `created`: when the media was made (UNIX time), by default its mtime. What `path` held before
        stays with its byte copies, if it has any (see let_go). `words`: the lines read in each frame, when its text
        was read. `fingerprint`: see ingest/copies.py. `pixels`: the frames' pixel signatures, by which a video is
        paired with the indexed videos that hold the same content in another encoding (extract.pixels)."""
        placed: list[Path] = []
        times, vectors = [f[0] for f in frames], [f[1] for f in frames]
        try:
            with self.catalog.write() as gens:
                _, removed = self.let_go(path)
                ids = self.catalog.add_source(path, kind, size, mtime, duration, fps, width, height, times, vectors,
                                              created, pixels if kind == "video" else None)  # photos: never paired
                if pixels is not None and kind == "video":
                    self._pair_encodings(path, duration)
                if content_hash is not None:
                    self.catalog.set_hash(path, content_hash)
                if fingerprint is not None:
                    self.catalog.set_fingerprint(path, fingerprint)
                if words is not None:
                    self.catalog.add_words(path, dict(zip(ids, words)))
                size = 0
                for fid, (_, _, staged) in zip(ids, frames):
                    # Put in place before the commit: a crash leaves at worst an unreferenced file, overwritten when
                    # the id is handed out again (ids of rolled-back rows are reused, committed ones never).
                    tp = thumb_path(self.root, fid)
                    tp.parent.mkdir(parents=True, exist_ok=True)
                    size += os.stat(staged).st_size
                    os.replace(staged, tp)
                    placed.append(tp)
                self.catalog.add_to_meta(THUMB_BYTES, size)
                self.catalog.forget_skip(path)
        except BaseException:
            for tp in placed:
                tp.unlink(missing_ok=True)
            raise
        self._committed(gens, removed, ids, vectors)
        return ids

    def _pair_encodings(self, path: str, duration: float) -> None:
        """Record which indexed videos of about the same duration hold the same content as `path`."""
        source_id = self.catalog.source_at(path).id
        mine = self.catalog.source_pixels(source_id)
        if mine is None:
            return
        interval = float(self.catalog.meta["interval"])
        within = max(2 * interval, 0.02 * duration)
        # Only those whose first frame is the same are read whole: a library of clips of one length is not read
        # at every commit.
        maybe = [o for o, first in self.catalog.videos_lasting(duration, within, source_id)
                 if same_frame(mine[1][0], first)]
        self.catalog.add_encodings(source_id, [o for o in maybe if (theirs := self.catalog.source_pixels(o))
                                               is not None and same_content(mine, theirs, interval)])

    def put_words(self, path: str, words: dict[int, list[dict]]) -> None:
        """Record the lines read in an indexed source's frames (frame id -> lines), in one transaction."""
        with self.catalog.write() as gens:
            self.catalog.add_words(path, words)
        self.vectors.apply(gens, [], [], [])

    def put_lines(self, source_id: int, lines: Sequence[tuple[float, float, str, str, str]], layers: Sequence[str],
                  sidecars: dict | None, speech: str | None) -> None:
        """Replace the transcript lines of these layers of a source, in one transaction (see Catalog.set_lines)."""
        with self.catalog.write() as gens:
            self.catalog.set_lines(source_id, lines, layers, sidecars, speech)
        self.vectors.apply(gens, [], [], [])

    def remove_source(self, path: str, skipped_reason: str | None = None, size: int = 0, mtime: float = 0) -> bool:
        """Drop a path from the index (see let_go; with a reason, remember the file as unreadable). True if it was
        indexed, as a source or as a copy."""
        with self.catalog.write() as gens:
            existed, removed = self.let_go(path)
            if skipped_reason is not None:
                self.catalog.remember_skip(path, skipped_reason, size, mtime)
            else:
                self.catalog.forget_skip(path)
        self._committed(gens, removed, [], [])
        return existed

    def let_go(self, path: str) -> tuple[bool, list[int]]:
        """(inside a catalog write) Take `path` out of the index: a byte copy just goes; a source with a copy that
        still holds its bytes moves to that copy's path, keeping its id, frames and thumbnails; any other source
        goes with its frames. (whether `path` was indexed, the frame ids that went)"""
        if self.catalog.drop_copy(path):
            return True, []
        source = self.catalog.source_at(path)
        for copy in self.catalog.copies(source.id) if source is not None else []:
            if file_unchanged(copy.path, copy.size, copy.mtime):
                self.catalog.promote(copy)
                return True, []
            self.catalog.drop_copy(copy.path)  # changed or gone: its own run takes it
        existed, removed = self.catalog.drop_source(path)
        # Counted out now, deleted after the commit (_committed): a crash between leaves them uncounted on disk.
        self.catalog.add_to_meta(THUMB_BYTES, -sum(_size(thumb_path(self.root, fid)) for fid in removed))
        return existed, removed

    def put_copy(self, path: str, of: str, size: int, mtime: float) -> None:
        """Record `path` as a byte copy of the indexed source at `of`, in place of whatever `path` was before."""
        with self.catalog.write() as gens:
            _, removed = self.let_go(path)
            self.catalog.add_copy(path, of, size, mtime)
            self.catalog.forget_skip(path)
        self._committed(gens, removed, [], [])

    def mark_offline(self, paths: Sequence[str]) -> None:
        """Keep these sources, marked offline (their files could not be looked for: see ingest/plan.py)."""
        self._change(lambda: self.catalog.set_offline(paths, time.time()))

    def set_fingerprints(self, pairs: Sequence[tuple[str, str]]) -> None:
        """[(source path, fingerprint)] in one transaction."""
        self._change(lambda: self.catalog.set_fingerprints(pairs))

    def mark_online(self, paths: Sequence[str]) -> None:
        self._change(lambda: self.catalog.set_online(paths))

    def move_source(self, path: str, to: str, size: int, mtime: float) -> None:
        """The source at `path` is the file now at `to` (moved): its id, frames, vectors and thumbnails stay."""
        def move() -> None:
            self.catalog.drop_copy(to)  # recorded as a copy before it changed: the file there is the source now
            self.catalog.move_source(path, to, size, mtime)
            self.catalog.forget_skip(to)
        self._change(move)

    def _change(self, change: Callable[[], None]) -> None:
        """One catalog transaction that adds and removes no frame."""
        with self.catalog.write() as gens:
            change()
        self._committed(gens, [], [], [])

    def _committed(self, gens: list[int], removed: list[int], added: list[int], vectors) -> None:
        self.vectors.apply(gens, removed, added, vectors)
        for fid in removed:
            thumb_path(self.root, fid).unlink(missing_ok=True)

    def save_vectors(self) -> None:
        """Write the FAISS cache (see VectorCache.save); WriteError if the disk refuses."""
        try:
            self.vectors.save()
        except (RuntimeError, OSError, sqlite3.Error) as e:
            raise WriteError(self.root, e) from e

    def count_thumbnails(self) -> None:
        """(the caller holds the WriterLock) Record the bytes of the thumbnails of an index made before vidsearch
        kept that figure: walked once here, then kept at every commit."""
        if THUMB_BYTES not in self.catalog.read_meta():
            staging = str(staging_dir(self.root))
            self.catalog.set_meta(THUMB_BYTES, _walked(self.root / THUMBS, skip=staging))

    def size_on_disk(self) -> int:
        """The bytes of the index: the files in its folder (the catalog, its write-ahead log, the FAISS cache), its
        thumbnails as recorded at each commit, and the browser copies and clips cached under it. Not counted: the
        thumbnails of a run not committed yet. Cheap: a few stats, whatever the library's size (an index whose
        thumbnails were never counted, made by an older vidsearch and not written since, has them walked)."""
        recorded = self.catalog.read_meta().get(THUMB_BYTES)
        total = 0 if recorded is None else int(recorded)
        for entry in os.scandir(self.root):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file():
                    total += entry.stat().st_size
                elif entry.is_dir() and (entry.name != THUMBS or recorded is None):
                    total += _walked(Path(entry.path))
        return total

    def close(self) -> None:
        self.catalog.close()
