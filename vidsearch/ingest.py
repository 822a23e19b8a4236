"""Indexing runs: discover files, decide what is new, decode and embed in a pipeline, commit source by source."""
from __future__ import annotations

import contextlib
import fcntl
import os
import queue
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from .embed import Embedder
from .errors import MediaError, WriteError
from .extract import Candidate, MediaInfo, discover, open_media
from .extract.frames import shrink
from .store import Store, staging_dir

LOCK_FILE = "write.lock"
CHECKPOINT_SECONDS = 300  # save the FAISS cache this often during long runs, so a crash costs little to reopen
THUMB_QUALITY = 85
# A file whose decoder goes this long without a frame is skipped: a native decoder that hangs cannot be stopped
# in its thread, so the thread is left behind and the run goes on with a fresh one. Generous, because a slow
# decoder is not a hung one; a working one yields a frame per interval of video (720p H.264 decodes at about
# 300 frames/s on the development machine: README, Speed).
DECODE_TIMEOUT = 60.0


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


def start_run(store: Store, paths: Iterable[str]) -> tuple[Report, list[Candidate]]:
    """Plan a run and remove the sources whose files are gone: (the run's report so far, the files to index)."""
    report = Report()
    todo, gone, problems, report.unchanged = plan(store, paths)
    report.skipped.extend(problems)
    for path in gone:
        store.remove_source(path)
        report.removed.append(path)
    return report, todo


def finish_run(store: Store, report: Report, started: float) -> Report:
    """Save the FAISS cache and record the run in the catalog."""
    store.save_vectors()
    report.seconds = time.monotonic() - started
    store.set_meta("last_run", {"finished_at": time.time(), **report.as_dict()})
    return report


def fresh_staging(store: Store) -> Path:
    """The staging folder, emptied of what a killed run left (the caller holds the writer lock)."""
    staging = staging_dir(store.root)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
    except OSError as e:
        raise WriteError(store.root, e) from e
    return staging


def thumbnail_jpeg(rgb: np.ndarray) -> bytes:
    small = shrink(rgb)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
    if not ok:
        raise MediaError("a frame could not be encoded as a JPEG thumbnail")
    return jpeg.tobytes()


def stage_jpeg(jpeg: bytes, staging: Path, root: Path) -> Path:
    path = staging / f"{uuid.uuid4().hex}.jpg"
    try:
        path.write_bytes(jpeg)  # raises on a full disk, where cv2.imwrite would only return False
    except OSError as e:
        path.unlink(missing_ok=True)
        raise WriteError(root, e) from e
    return path


def _vanished(c: Candidate) -> str | None:
    """Why the file can no longer be indexed as planned, if it was deleted or changed since it was found."""
    try:
        st = os.stat(c.path)
    except FileNotFoundError:
        return "the file was deleted while it was being indexed"
    if (st.st_size, st.st_mtime) != (c.size, c.mtime):
        return "the file changed while it was being indexed (the next run takes it again)"
    return None


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
class _Decoder:
    """A decode thread as the consumer sees it, to tell a stalled decoder from a busy one."""

    thread: threading.Thread | None = None
    cand: Candidate | None = None
    busy_since: float | None = None  # when it went back to decoding; None while it waits for the queue or is idle
    opening: bool = False  # inside open_media, rather than reading frames
    abandoned: bool = False


@dataclass
class _Pending:
    cand: Candidate
    times: list[float] = field(default_factory=list)
    thumbs: list[Path] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    info: MediaInfo | None = None


def run(store: Store, get_embedder: Callable[[], Embedder], paths: Iterable[str], *, interval: float,
        batch_size: int = 32, progress: Callable[[Progress], None] | None = None, workers: int = 2,
        decode_timeout: float = DECODE_TIMEOUT) -> Report:
    """Bring the index up to date with `paths`. The caller holds the WriterLock. The model is only asked for
    (and so loaded) when there is something to embed. A file whose decoding yields no frame for `decode_timeout`
    seconds is skipped. Raises WriteError if the index cannot be written (a full disk); the sources
    committed until then stay."""
    started = time.monotonic()
    report, todo = start_run(store, paths)
    embedder = get_embedder() if todo else None
    staging = fresh_staging(store)
    out: queue.Queue = queue.Queue(maxsize=max(4 * batch_size, 64))  # bounds memory whatever the video length
    stop = threading.Event()
    jobs: queue.SimpleQueue[Candidate] = queue.SimpleQueue()
    for c in todo:
        jobs.put(c)
    handoff = threading.Lock()  # a decoder takes its next file and the consumer abandons it, never both at once
    decoders: list[_Decoder] = []

    def put(item, d: _Decoder) -> None:
        d.busy_since = None  # waiting for the consumer is not a stall
        while True:
            if stop.is_set() or d.abandoned:
                raise _Stopped
            try:
                out.put(item, timeout=0.2)
                break
            except queue.Full:
                pass
        d.busy_since = time.monotonic()

    def produce(c: Candidate, d: _Decoder) -> None:
        try:
            d.opening = True
            media = open_media(c.path)
            d.opening = False
            try:
                for fr in media.frames(interval, embedder.decode_side):
                    thumb = stage_jpeg(thumbnail_jpeg(fr.rgb), staging, store.root)
                    try:
                        put(("frame", c, fr.t, embedder.prepare(fr.rgb), thumb), d)
                    except _Stopped:
                        thumb.unlink(missing_ok=True)
                        raise
                info = media.info
            finally:
                media.close()
            gone = _vanished(c)
            put(("done", c, info) if gone is None else ("error", c, gone), d)
        except WriteError as e:
            put(("fatal", c, e), d)
        except MediaError as e:
            put(("error", c, _vanished(c) or str(e)), d)
        except _Stopped:
            raise
        except Exception as e:  # a decoder bug on one file must not end the run
            put(("error", c, _vanished(c) or f"{type(e).__name__}: {e}"), d)

    def decode(d: _Decoder) -> None:
        with contextlib.suppress(_Stopped):
            while True:
                with handoff:
                    if stop.is_set() or d.abandoned:
                        return
                    try:
                        d.cand = jobs.get_nowait()
                    except queue.Empty:
                        d.busy_since = None
                        return
                    d.busy_since = time.monotonic()
                produce(d.cand, d)

    def start_decoder() -> None:
        d = _Decoder()
        # A daemon thread: one stuck in a hung decoder must not keep the process from exiting.
        d.thread = threading.Thread(target=decode, args=(d,), name="vidsearch-decode", daemon=True)
        decoders.append(d)
        d.thread.start()

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

    settled: set[str] = set()  # files committed, skipped or given up: later messages about them are stale
    given_up: set[str] = set()

    def skip(c: Candidate, reason: str, remember: bool = True) -> None:
        nonlocal files_done
        for staged in pending.pop(c.path, _Pending(c)).thumbs:
            staged.unlink(missing_ok=True)
        if remember:
            skip_source(store, report, c, reason)
        else:
            report.skipped.append((c.path, reason))
        settled.add(c.path)
        files_done += 1
        tick(c.path)

    stuck: list[_Decoder] = []

    def give_up_stalled() -> None:
        now = time.monotonic()
        for d in list(decoders):
            with handoff:
                since, opening = d.busy_since, d.opening
                if since is None or now - since < decode_timeout:
                    continue
                d.abandoned = True
            decoders.remove(d)
            # A stall in opening while another decoder is still stuck opening means opens block on something they
            # share (a dead network mount, a decoder library's lock), not on this file: only the first stuck file
            # is remembered as unreadable; this one, and the files not started, are left for the next run rather
            # than each costing decode_timeout and being remembered as unreadable too.
            blockers = [x.cand.path for x in stuck if opening and x.opening and x.thread.is_alive()]
            culprit = blockers[0] if blockers else None
            stuck.append(d)
            if d.cand.path not in settled:
                given_up.add(d.cand.path)
                if culprit is None:
                    skip(d.cand, f"decoding stalled for {decode_timeout:g} s (no frame came)")
                else:
                    skip(d.cand, f"decoding stalled behind {culprit}, which is stuck; tried again next run", False)
            if culprit is None:
                start_decoder()
                continue
            while True:
                try:
                    c = jobs.get_nowait()
                except queue.Empty:
                    break
                skip(c, f"not tried: decoding is blocked behind {culprit}, which is stuck; tried again next run",
                     False)

    try:
        for _ in range(min(workers, len(todo))):
            start_decoder()
        while files_done < len(todo):
            try:
                kind, c, *rest = out.get(timeout=min(1.0, decode_timeout / 4))
            except queue.Empty:
                give_up_stalled()
                continue
            give_up_stalled()
            if c.path in given_up:
                if kind == "frame":
                    rest[-1].unlink(missing_ok=True)
                continue
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
                settled.add(c.path)
                files_done += 1
                commit_ready()
                tick(c.path)
            elif kind == "error":
                skip(c, rest[0])
            else:
                raise rest[0]  # the index could not be written: stop the run
            if time.monotonic() - last_checkpoint > CHECKPOINT_SECONDS:
                store.save_vectors()
                last_checkpoint = time.monotonic()
        flush()
        commit_ready()
    finally:
        stop.set()
        for d in decoders:  # each stops at its next frame; one that hangs is left after decode_timeout
            d.thread.join(timeout=decode_timeout)
        with contextlib.suppress(OSError):  # thumbnails of sources never committed
            for f in staging.iterdir():
                f.unlink(missing_ok=True)
    return finish_run(store, report, started)
