"""Indexing runs: discover files, decide what is new, decode and embed in a pipeline, commit source by source."""
from __future__ import annotations

import fcntl
import os
import queue
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from .embed import Embedder
from .extract import Candidate, MediaError, MediaInfo, discover, open_media
from .store import Store, staging_dir

LOCK_FILE = "write.lock"
CHECKPOINT_SECONDS = 300  # save the FAISS cache this often during long runs, so a crash costs little to reopen
THUMB_QUALITY = 85


@dataclass
class Progress:
    files_done: int
    files_total: int
    frames: int
    seconds: float
    path: str = ""


@dataclass
class Report:
    """What one run did. `skipped` holds (path, reason) for every file that could not be indexed."""

    added: list[str] = field(default_factory=list)
    frames_added: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {"added": len(self.added), "frames_added": self.frames_added, "unchanged": self.unchanged,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped], "removed": self.removed,
                "seconds": round(self.seconds, 2)}


class WriterLock:
    """One indexing run per index folder at a time (an OS lock: released even if the process is killed)."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self._f = open(root / LOCK_FILE, "w")
        try:
            fcntl.flock(self._f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._f.close()
            raise RuntimeError(f"Another vidsearch run is writing to {root}; wait for it to finish.") from None

    def release(self) -> None:
        self._f.close()


def _is_under(path: str, tops: list[str]) -> bool:
    return any(path == t or path.startswith(t.rstrip(os.sep) + os.sep) for t in tops)


def plan(store: Store, paths: Iterable[str]) -> tuple[list[Candidate], list[str], list[tuple[str, str]], int]:
    """(files to index, indexed paths whose files are gone, (path, reason) still skipped, unchanged count)."""
    tops = [os.path.realpath(p) for p in paths]
    found: dict[str, Candidate] = {}
    problems: list[tuple[str, str]] = []
    for item in discover(tops, exclude=[str(store.root)]):
        if isinstance(item, Candidate):
            found[item.path] = item
        else:
            problems.append(item)
    indexed = {r["path"]: r for r in store.sources()}
    known_bad = {r["path"]: r for r in store.skipped()}
    todo, unchanged = [], 0
    for c in found.values():
        row = indexed.get(c.path) or known_bad.get(c.path)
        if row is not None and row["size"] == c.size and row["mtime"] == c.mtime:
            if c.path in known_bad:
                problems.append((c.path, known_bad[c.path]["reason"]))  # unchanged since it failed: not retried
            else:
                unchanged += 1
        else:
            todo.append(c)
    gone = [p for p in indexed if p not in found and _is_under(p, tops)]
    gone += [p for p in known_bad if p not in found and _is_under(p, tops)]
    return todo, gone, problems, unchanged


def _stage_thumbnail(rgb: np.ndarray, staging: Path) -> Path:
    path = staging / f"{uuid.uuid4().hex}.jpg"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
    return path


def commit_source(store: Store, report: Report, cand: Candidate, info: MediaInfo,
                  frames: list[tuple[float, np.ndarray, Path]]) -> None:
    """Write one source's frames (t, vector, staged thumbnail) as one transaction, and count it."""
    store.put_source(cand.path, info.kind, cand.size, cand.mtime, info.duration, info.fps, info.width, info.height,
                     frames)
    report.added.append(cand.path)
    report.frames_added += len(frames)


def skip_source(store: Store, report: Report, cand: Candidate, reason: str) -> None:
    report.skipped.append((cand.path, reason))
    # A changed file that no longer reads must not keep its old frames.
    store.remove_source(cand.path, skipped_reason=reason, size=cand.size, mtime=cand.mtime)


class _Stopped(Exception):
    pass


@dataclass
class _Pending:
    cand: Candidate
    times: list[float] = field(default_factory=list)
    thumbs: list[Path] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    info: MediaInfo | None = None


def run(store: Store, get_embedder: Callable[[], Embedder], paths: Iterable[str], *, interval: float,
        batch_size: int = 32, progress: Callable[[Progress], None] | None = None, workers: int = 2) -> Report:
    """Bring the index up to date with `paths`. The caller holds the WriterLock. The model is only asked for
    (and so loaded) when there is something to embed."""
    started = time.monotonic()
    report = Report()
    todo, gone, problems, report.unchanged = plan(store, paths)
    report.skipped.extend(problems)
    for path in gone:
        store.remove_source(path)
        report.removed.append(path)

    embedder = get_embedder() if todo else None
    staging = staging_dir(store.root)
    shutil.rmtree(staging, ignore_errors=True)  # left by a killed run; we hold the writer lock
    staging.mkdir(parents=True)
    out: queue.Queue = queue.Queue(maxsize=max(4 * batch_size, 64))  # bounds memory whatever the video length
    stop = threading.Event()

    def put(item) -> None:
        while True:
            if stop.is_set():
                raise _Stopped
            try:
                out.put(item, timeout=0.2)
                return
            except queue.Full:
                pass

    def produce(c: Candidate) -> None:
        try:
            media = open_media(c.path)
            try:
                for fr in media.frames(interval):
                    put(("frame", c, fr.t, embedder.prepare(fr.rgb), _stage_thumbnail(fr.rgb, staging)))
                put(("done", c, media.info))
            finally:
                media.close()
        except _Stopped:
            pass
        except MediaError as e:
            put(("error", c, str(e)))
        except Exception as e:  # a decoder bug on one file must not end the run
            put(("error", c, f"{type(e).__name__}: {e}"))

    pending: dict[str, _Pending] = {}
    batch: list[tuple[_Pending, np.ndarray]] = []
    files_done = frames_seen = 0
    last_checkpoint = time.monotonic()

    def tick(path: str = "") -> None:
        if progress:
            progress(Progress(files_done, len(todo), frames_seen, time.monotonic() - started, path))

    def flush() -> None:
        if batch:
            vecs = embedder.encode_prepared([sq for _, sq in batch])
            for (p, _), v in zip(batch, vecs):
                p.vectors.append(v)
            batch.clear()

    def commit_ready() -> None:
        for path, p in list(pending.items()):
            if p.info is not None and len(p.vectors) == len(p.times):
                commit_source(store, report, p.cand, p.info, list(zip(p.times, p.vectors, p.thumbs)))
                del pending[path]

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="vidsearch-decode")
    try:
        for c in todo:
            pool.submit(produce, c)
        while files_done < len(todo):
            kind, c, *rest = out.get()
            if kind == "frame":
                p = pending.setdefault(c.path, _Pending(c))
                t, square, thumb = rest
                p.times.append(t)
                p.thumbs.append(thumb)
                batch.append((p, square))
                frames_seen += 1
                if len(batch) >= batch_size:
                    flush()
                    commit_ready()
                    tick(c.path)
            elif kind == "done":
                pending.setdefault(c.path, _Pending(c)).info = rest[0]
                files_done += 1
                commit_ready()
                tick(c.path)
            else:
                for staged in pending.pop(c.path, _Pending(c)).thumbs:
                    staged.unlink(missing_ok=True)
                skip_source(store, report, c, rest[0])
                files_done += 1
                tick(c.path)
            if time.monotonic() - last_checkpoint > CHECKPOINT_SECONDS:
                store.save_vectors()
                last_checkpoint = time.monotonic()
        flush()
        commit_ready()
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    store.save_vectors()
    report.seconds = time.monotonic() - started
    store.set_meta("last_run", {"finished_at": time.time(), **report.as_dict()})
    return report
