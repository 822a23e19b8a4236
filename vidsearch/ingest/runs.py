"""One indexing run's state and bookkeeping, whichever producer feeds it.

Run.start plans the run (plan.py), takes moved sources to their new paths, removes the sources whose files are gone,
keeps those that are offline (marked) and empties the staging folder. A
producer then tells the run what becomes of each file: local.py (decode threads and one embedder in this process)
or ray.py (decode-and-embed workers on a Ray cluster). The run keeps the frames of each file pending until the file
is read to the end and all its vectors are in, then commits it as one transaction; it skips (and remembers as
unreadable, unless the fault is elsewhere) the files that fail or stall, ticks progress, saves the FAISS cache every
CHECKPOINT_SECONDS, and finish() saves it and records the run. This process is the index's only writer (WriterLock):
a run killed at any moment leaves whole sources, and the next run picks up where it stopped.

This module is named runs.py, not run.py, because `vidsearch.ingest.run` is the local entry function.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from ..catalog import Source
from ..extract import Candidate, MediaInfo
from ..extract.metadata import created_time
from ..store import Store, file_unchanged
from . import plan as planning
from .copies import Copies, fill_fingerprints, find_copies, find_moves, fingerprint
from .thumbnails import clear_staging, fresh_staging, stage_jpeg

LOCK_FILE = "write.lock"
CHECKPOINT_SECONDS = 300  # save the FAISS cache this often during long runs, so a crash costs little to reopen
# A file whose decoder goes this long without a frame is skipped: a native decoder that hangs cannot be stopped
# in its thread, so the thread is left behind and the run goes on with a fresh one. Generous, because a slow
# decoder is not a hung one; a working one yields a frame per interval of video (720p H.264 decodes at about
# 300 frames/s on the development machine: README, Speed).
DECODE_TIMEOUT = 60.0


@dataclass
class Progress:
    files_done: int
    files_total: int
    frames: int  # sampled so far
    seconds: float
    path: str = ""
    embedded: int = 0  # of which the model saw; the others were unchanged and reuse their source's last vector
    copies: int = 0  # files found to be byte copies of indexed ones (not counted in files_total: nothing to read)
    note: str = ""  # what the run does meanwhile, said once (the model's one-time preparation for this CPU)


@dataclass
class Report:
    """What one run did. `skipped` holds (path, reason) for every file that could not be indexed."""

    added: list[str] = field(default_factory=list)
    frames_added: int = 0
    frames_embedded: int = 0  # of the frames sampled, those the model saw (the rest were unchanged: vector reused)
    text_read: int = 0  # sources indexed before whose text this run read (an index switched to --ocr)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    seconds: float = 0.0
    copies: list[tuple[str, str]] = field(default_factory=list)  # (path, the indexed path whose bytes it holds)
    # A given path -> its sources kept though their files were not found: the folder could not be listed, or was
    # missing or empty (a drive not mounted). Dropped by a run with prune.
    offline: dict[str, list[str]] = field(default_factory=dict)
    moved: list[tuple[str, str]] = field(default_factory=list)  # (old path, new path): taken over, not embedded
    back: list[str] = field(default_factory=list)  # sources offline before whose files are there again
    transcribed: int = 0  # videos whose subtitles or speech this run read (ingest/transcripts.py)
    lines: int = 0  # the lines of subtitles and speech found in them
    problems: list[tuple[str, str]] = field(default_factory=list)  # (video, a subtitle or its speech not read)

    def as_dict(self) -> dict:
        return {"added": len(self.added), "copies": len(self.copies), "frames_added": self.frames_added,
                "frames_embedded": self.frames_embedded, "text_read": self.text_read, "unchanged": self.unchanged,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped], "removed": self.removed,
                "offline": {top: len(paths) for top, paths in self.offline.items()},
                "moved": [{"from": a, "to": b} for a, b in self.moved], "back": len(self.back),
                "transcribed": self.transcribed, "lines": self.lines,
                "problems": [{"path": p, "problem": x} for p, x in self.problems],
                "seconds": round(self.seconds, 2)}


class WriterLock:
    """One indexing run per index folder at a time: an OS lock on LOCK_FILE (filelock: flock, or a Windows file lock),
    released even if the process is killed. Taken at once or not at all: RuntimeError if another run holds it, in
    this process or another."""

    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(root / LOCK_FILE, timeout=0)
        try:
            self._lock.acquire()
        except Timeout:
            raise RuntimeError(f"Another vidsearch run is writing to {root}; wait for it to finish.") from None

    def release(self) -> None:
        self._lock.release()


@dataclass
class Pending:
    """A file being indexed: its frames so far (time, staged thumbnail, and vector once embedded)."""

    cand: Candidate
    times: list[float] = field(default_factory=list)
    thumbs: list[Path] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    pixels: list[bytes] = field(default_factory=list)  # each frame's pixel signature (extract.pixels)
    info: MediaInfo | None = None  # set once the file was read to the end
    embedded: int = 0  # frames the model saw (the others reuse the last embedded vector)
    words: list[Future] = field(default_factory=list)  # when the run reads text: each frame's lines, being read

    @property
    def ready(self) -> bool:
        return (self.info is not None and len(self.vectors) == len(self.times)
                and all(w.done() for w in self.words))

    def discard(self) -> None:
        for staged in self.thumbs:
            staged.unlink(missing_ok=True)


def _no_words() -> Future:
    f = Future()
    f.set_result([])
    return f


def _keep_offline(store: Store, report: Report, offline: dict[str, list[Source]], moved: set[str],
                  prune: bool) -> None:
    """Mark the sources not found in folders that could not be listed offline, keeping them (removed with `prune`).
    One with a byte copy still on disk moves there instead (Store.let_go): its content stays where it can be had."""
    if not offline:
        return
    with_copies = {c.source_id for c in store.catalog.copies() if file_unchanged(c.path, c.size, c.mtime)}
    newly = []
    for top, sources in offline.items():
        for s in sources:
            if s.path in moved:
                continue
            if prune or s.id in with_copies:
                store.remove_source(s.path)
                report.removed.append(s.path)
                continue
            report.offline.setdefault(top, []).append(s.path)
            if s.offline_since is None:
                newly.append(s.path)
    if newly:
        store.mark_offline(newly)


class Run:
    """A run's state. Only one thread reports to it (the producer's consuming thread); stage() is safe from any.

    Made by `with Run.start(...) as run:`; leaving the block empties the staging folder, whether the run finished
    or failed."""

    def __init__(self, store: Store, copies: Copies, report: Report, started: float,
                 progress: Callable[[Progress], None] | None, decode_timeout: float):
        self.store, self.todo, self.report, self.decode_timeout = store, copies.todo, report, decode_timeout
        self._copies = copies  # of files being indexed: recorded once their original commits
        self._started, self._progress = started, progress
        self.staging = fresh_staging(store.root)
        self.pending: dict[str, Pending] = {}
        self.files_done = self.frames_seen = self.frames_embedded = 0
        self._settled: set[str] = set()  # files finished or skipped: nothing more is expected of them
        self._given_up: set[str] = set()  # files whose producer stalled: what it still sends is stale
        self._last_checkpoint = time.monotonic()
        self.reads_text = False  # set by a producer that reads the text in frames (ocr.py)

    @classmethod
    @contextlib.contextmanager
    def start(cls, store: Store, paths: Iterable[str], *, progress: Callable[[Progress], None] | None = None,
              decode_timeout: float = DECODE_TIMEOUT, prune: bool = False) -> Iterator[Run]:
        """Plan a run, take moved sources over, remove the sources whose files are gone and mark those offline (the
        caller holds the WriterLock). With `prune`, offline sources under `paths` are removed too."""
        started = time.monotonic()
        report = Report()
        paths = list(paths)
        todo, gone, skipped, report.unchanged, offline, back, unprinted = planning.plan(store, paths)  # tests wrap it
        report.skipped.extend(skipped)
        store.count_thumbnails()
        fill_fingerprints(store, unprinted)
        lost = set(gone) | {s.path for kept in offline.values() for s in kept}
        moved = set()
        for s, c in find_moves(store, todo, lost, [os.path.realpath(p) for p in paths]):
            store.move_source(s.path, c.path, c.size, c.mtime)
            report.moved.append((s.path, c.path))
            moved |= {s.path, c.path}
        todo = [c for c in todo if c.path not in moved]
        for path in gone:
            if path not in moved:
                store.remove_source(path)
                report.removed.append(path)
        _keep_offline(store, report, offline, moved, prune)
        if back:
            store.mark_online(back)
            report.back = back
        copies = find_copies(store, todo)
        for c, of in copies.of_indexed:
            store.put_copy(c.path, of, c.size, c.mtime)
            report.copies.append((c.path, of))
        run = cls(store, copies, report, started, progress, decode_timeout)
        try:
            yield run
        finally:
            clear_staging(run.staging)  # thumbnails of sources never committed

    def finish(self) -> Report:
        """Save the FAISS cache and record the run in the catalog."""
        self.store.save_vectors()
        self.report.seconds = time.monotonic() - self._started
        self.store.catalog.set_meta("last_run", {"finished_at": time.time(), **self.report.as_dict()})
        return self.report

    @property
    def unfinished(self) -> bool:
        return self.files_done < len(self.todo)

    # -- what the producers report -------------------------------------------------------------------------------

    def stage(self, jpeg: bytes) -> Path:
        """A thumbnail, written to the staging folder until its source commits (WriteError on a full disk)."""
        return stage_jpeg(jpeg, self.staging, self.store.root)

    def sampled(self, cand: Candidate, t: float, thumb: Path, vector: np.ndarray | None = None, *,
                embedded: bool = True, words: Future | None = None, pixels: bytes = b"") -> Pending:
        """A frame of `cand` at `t`, its thumbnail staged; its vector comes with it or is appended to the returned
        Pending once embedded (or copied, for a frame unchanged since the last embedded one: `embedded=False`).
        When the run reads text, `words` is the Future of the frame's lines; None reuses the frame before's.
        `pixels`: its pixel signature (samples.py)."""
        p = self.pending.setdefault(cand.path, Pending(cand))
        if self.reads_text:
            p.words.append(words or (p.words[-1] if p.words else _no_words()))
        p.times.append(t)
        p.thumbs.append(thumb)
        p.pixels.append(pixels)
        if vector is not None:
            p.vectors.append(vector)
        self.frames_seen += 1
        self.frames_embedded += embedded
        p.embedded += embedded
        return p

    def finished(self, cand: Candidate, info: MediaInfo) -> None:
        """`cand` was read to the end: it commits as soon as its last vectors are in."""
        self.pending.setdefault(cand.path, Pending(cand)).info = info
        self._settle(cand)
        self.commit_ready()
        self.tick(cand.path)

    def commit_ready(self) -> None:
        """Commit every pending source whose frames are all embedded, each as one transaction."""
        for path, p in list(self.pending.items()):
            if p.ready:
                c, info = p.cand, p.info
                created = created_time(c.path, info.kind)  # the container's or EXIF date; else the mtime
                self.store.put_source(c.path, info.kind, c.size, c.mtime, info.duration, info.fps, info.width,
                                      info.height, list(zip(p.times, p.vectors, p.thumbs)), pixels=p.pixels,
                                      created=c.mtime if created is None else created,
                                      content_hash=self._copies.hashes.get(c.path), fingerprint=fingerprint(c.path),
                                      words=[[w.as_json() for w in f.result()] for f in p.words]
                                      if self.reads_text else None)
                self.report.added.append(c.path)
                self.report.frames_added += len(p.times)
                self.report.frames_embedded += p.embedded
                del self.pending[path]
                for copy in self._copies.of_todo.pop(path, []):
                    self.store.put_copy(copy.path, path, copy.size, copy.mtime)
                    self.report.copies.append((copy.path, path))

    def skip(self, cand: Candidate, reason: str, *, remember: bool = True) -> None:
        """Drop what `cand` staged and report it. Remembered (the default), it is not retried until it changes, and
        a changed file that no longer reads loses its old frames; not remembered, the next run tries it again."""
        self.pending.pop(cand.path, Pending(cand)).discard()
        self.report.skipped.append((cand.path, reason))
        # A file no longer there is left to the next run's plan: its drive may have gone offline during this one.
        if remember and os.path.lexists(cand.path):
            self.store.remove_source(cand.path, skipped_reason=reason, size=cand.size, mtime=cand.mtime)
        for copy in self._copies.of_todo.pop(cand.path, []):  # waited for it: the next run tries them themselves
            self.report.skipped.append((copy.path, f"holds the same bytes as {cand.path}, which could not be indexed "
                                                   f"({reason}); tried again next run"))
        self._settle(cand)
        self.tick(cand.path)

    def stalled(self, cand: Candidate, behind: str | None = None) -> None:
        """Give up on `cand`, whose decoder sent nothing for decode_timeout. `behind`: the stuck file it waits on,
        when the stall is not this file's fault (then it is tried again next run)."""
        if cand.path in self._settled:  # its last message came in before the stall was noticed
            return
        self._given_up.add(cand.path)
        if behind is None:
            self.skip(cand, f"decoding stalled for {self.decode_timeout:g} s (no frame came)")
        else:
            self.skip(cand, f"decoding stalled behind {behind}, which is stuck; tried again next run", remember=False)

    def not_tried(self, cand: Candidate, behind: str) -> None:
        self.skip(cand, f"not tried: decoding is blocked behind {behind}, which is stuck; tried again next run",
                  remember=False)

    @property
    def stall_poll(self) -> float:
        """How often a producer looks for stalls while nothing comes (seconds)."""
        return min(1.0, self.decode_timeout / 4)

    def overdue(self, since: float | None, now: float) -> bool:
        """Whether a producer busy `since` (time.monotonic; None: not busy) has sent nothing for decode_timeout: one
        rule for a local decode thread and a Ray worker."""
        return since is not None and now - since >= self.decode_timeout

    def given_up(self, cand: Candidate) -> bool:
        return cand.path in self._given_up

    # -- upkeep --------------------------------------------------------------------------------------------------

    def tick(self, path: str = "", note: str = "") -> None:
        if self._progress:
            self._progress(Progress(self.files_done, len(self.todo), self.frames_seen,
                                    time.monotonic() - self._started, path, self.frames_embedded,
                                    len(self.report.copies), note))

    def tick_text(self, done: int, total: int, path: str) -> None:
        """Progress while the text of sources indexed before is read: they count as files after the run's own."""
        if self._progress:
            self._progress(Progress(self.files_done + done, len(self.todo) + total, self.frames_seen,
                                    time.monotonic() - self._started, path, self.frames_embedded))

    def checkpoint(self) -> None:
        """Save the FAISS cache if the last save is CHECKPOINT_SECONDS old."""
        if time.monotonic() - self._last_checkpoint > CHECKPOINT_SECONDS:
            self.store.save_vectors()
            self._last_checkpoint = time.monotonic()

    def _settle(self, cand: Candidate) -> None:
        self._settled.add(cand.path)
        self.files_done += 1
