"""The local producer: decode threads and one embedder in this process, feeding a Run.

    decode threads (`workers`, daemons) --Sampled/Finished/Failed/Fatal--> bounded queue --> the caller's thread:
    batches of frames --> embedder --> Run (commits, skips, progress, checkpoints)

Each decode thread takes the next file, samples it (samples.py: decode, change gate, model input, thumbnail, pixel
signature), stages each thumbnail, submits changed frames to the text readers when the run reads text, and sends
one Sampled per frame, then Finished, or Failed with a reason, or Fatal when the index cannot be written (a full
disk), which stops the run. The queue is bounded, so memory stays
flat whatever the length of the videos. The caller's thread embeds the frames in batches and reports to the Run.

A native decoder that hangs cannot be interrupted: a decoder that sends nothing for `decode_timeout` s is
abandoned (a daemon thread, so it does not keep the process alive), its file skipped, and a fresh thread started.
"""
from __future__ import annotations

import contextlib
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..embed import Embedder
from ..errors import MediaError, WriteError
from ..extract import Candidate, MediaInfo, open_media
from ..extract.change import ChangeGate
from ..ocr import OCR_SIDE, TextReaders
from ..store import Store
from .plan import vanished
from .runs import DECODE_TIMEOUT, Pending, Progress, Report, Run
from .samples import Done, Producer, Sample

log = logging.getLogger(__name__)


@dataclass
class Sampled:
    """A frame: its time, the model's input (None when it is unchanged since its source's last embedded frame,
    whose vector it reuses), and its thumbnail staged as a file."""

    cand: Candidate
    t: float
    square: np.ndarray | None
    thumb: Path
    pixels: bytes  # its pixel signature (extract.pixels)
    words: Future | None = None  # its lines being read, when the run reads text and the frame changed


@dataclass
class Finished:
    cand: Candidate
    info: MediaInfo


@dataclass
class Failed:
    cand: Candidate
    reason: str


@dataclass
class Fatal:
    """The index could not be written: the run stops."""

    cand: Candidate
    error: WriteError


Message = Sampled | Finished | Failed | Fatal


def run(store: Store, get_embedder: Callable[[], Embedder], paths: Iterable[str], *, interval: float,
        batch_size: int = 32, progress: Callable[[Progress], None] | None = None, workers: int | None = None,
        decode_timeout: float = DECODE_TIMEOUT, reuse: bool = True, ocr: bool = False, prune: bool = False) -> Report:
    """Bring the index up to date with `paths`. The caller holds the WriterLock. The model is only asked for
    (and so loaded) when there is something to embed. With `reuse`, a sample unchanged since its source's last
    embedded one (extract.change) takes that vector with no model pass. With `ocr`, the text of every changed
    sample is read too (ocr.py; unchanged ones take the words of the one before), and then that of the sources
    indexed before without it. `workers` files are decoded side by side (default: decoders_for the model's
    device). A file whose decoding yields no frame for `decode_timeout` seconds is skipped.
    Raises WriteError if the index cannot be written (a full disk); the sources committed until then stay. Sources
    whose folder cannot be read are kept, marked offline (ingest/plan.py); `prune` removes them."""
    readers = TextReaders() if ocr else None
    try:
        with Run.start(store, paths, progress=progress, decode_timeout=decode_timeout, prune=prune) as r:
            r.reads_text = ocr
            if r.todo:
                embedder = get_embedder()
                embedder.ready(lambda note: r.tick(note=note))  # a one-time export is said, not silent
                decoders = _Decoders(r, embedder, interval, workers or decoders_for(embedder.device),
                                     queue_size=max(4 * batch_size, 64),
                                     reuse=reuse, readers=readers)
                try:
                    _consume(r, decoders, _Batch(embedder, batch_size))
                finally:
                    decoders.close()
            if readers is not None:
                r.report.text_read = read_indexed_text(store, readers, interval, r.tick_text)
            return r.finish()
    finally:
        if readers is not None:
            readers.close()


def decoders_for(device: str) -> int:
    """Files decoded side by side. On a CPU the model takes the cores and two decoders keep it busy; a GPU embeds
    frames faster than one decoder makes them, so more files are decoded at once, one per 2 CPUs up to 8 (each
    decoder runs FFmpeg's own threads too)."""
    if device == "cpu":
        return 2
    return max(2, min(8, (os.cpu_count() or 2) // 2))


def _consume(r: Run, decoders: _Decoders, batch: _Batch) -> None:
    """Take the decoders' messages until every file is settled, reporting them to the run."""
    while r.unfinished:
        try:
            msg: Message = decoders.out.get(timeout=r.stall_poll)
        except queue.Empty:
            decoders.give_up_stalled()
            r.commit_ready()  # sources whose text was still being read
            continue
        decoders.give_up_stalled()
        if r.given_up(msg.cand):  # from an abandoned decoder that came unstuck: stale
            if isinstance(msg, Sampled):
                msg.thumb.unlink(missing_ok=True)
            continue
        match msg:
            case Sampled(cand, t, square, thumb, pixels, words):
                p = r.sampled(cand, t, thumb, embedded=square is not None, words=words, pixels=pixels)
                if batch.add(p, square):
                    batch.flush()
                    r.commit_ready()
                    r.tick(cand.path)
            case Finished(cand, info):
                r.finished(cand, info)
            case Failed(cand, reason):
                r.skip(cand, reason)
            case Fatal(_, error):
                raise error
        r.checkpoint()
    batch.flush()
    for p in list(r.pending.values()):
        for f in p.words:
            f.result()
    r.commit_ready()


class _Batch:
    """Frames waiting for the embedder, each with the pending source its vector goes to."""

    def __init__(self, embedder: Embedder, size: int):
        self.embedder, self.size = embedder, size
        self.items: list[tuple[Pending, np.ndarray | None]] = []  # in the order the frames came
        self.waiting = 0  # of which have a square to embed

    def add(self, p: Pending, square: np.ndarray | None) -> bool:
        """Add a frame (square None: it reuses the vector of its source's frame before it); True when the batch
        holds `size` frames to embed."""
        if square is None and not any(q is p for q, _ in self.items):
            p.vectors.append(p.vectors[-1])  # the vector it reuses is already there
            return False
        self.items.append((p, square))
        self.waiting += square is not None
        return self.waiting >= self.size

    def flush(self) -> None:
        squares = [sq for _, sq in self.items if sq is not None]
        vecs = iter(self.embedder.encode_prepared(squares) if squares else ())
        for p, sq in self.items:  # in order, so a reused vector is its source's frame before it
            p.vectors.append(next(vecs) if sq is not None else p.vectors[-1])
        self.items.clear()
        self.waiting = 0


class _Stopped(Exception):
    """Raised in a decode thread when the run ended or abandoned it: it stops at its next message."""


@dataclass
class _Decoder:
    """A decode thread as the consumer sees it, to tell a stalled decoder from a busy one."""

    thread: threading.Thread | None = None
    cand: Candidate | None = None
    busy_since: float | None = None  # when it went back to decoding; None while it waits for the queue or is idle
    opening: bool = False  # inside open_media, rather than reading frames
    abandoned: bool = False


class _Decoders:
    """The decode threads, the files they have yet to take, and the queue they send on. The methods whose names
    start with an underscore run in the decode threads; the others in the consumer's."""

    def __init__(self, r: Run, embedder: Embedder, interval: float, workers: int, queue_size: int, reuse: bool,
                 readers: TextReaders | None = None):
        self.run, self.readers = r, readers
        # Text needs more pixels than the model: frames are then decoded larger (the model's resize does the rest).
        side = max(embedder.decode_side, OCR_SIDE) if readers is not None else embedder.decode_side
        self.producer = Producer(embedder.prepare, side, interval, reuse, keep_frames=readers is not None)
        self.out: queue.Queue[Message] = queue.Queue(maxsize=queue_size)  # bounds memory whatever the video length
        self.jobs: queue.SimpleQueue[Candidate] = queue.SimpleQueue()
        for c in r.todo:
            self.jobs.put(c)
        self.stop = threading.Event()
        self.handoff = threading.Lock()  # a decoder takes its next file and the consumer abandons it, never both
        self.active: list[_Decoder] = []
        self.stuck: list[_Decoder] = []
        for _ in range(min(workers, len(r.todo))):
            self.start_one()

    def start_one(self) -> None:
        d = _Decoder()
        # A daemon thread: one stuck in a hung decoder must not keep the process from exiting.
        d.thread = threading.Thread(target=self._work, args=(d,), name="vidsearch-decode", daemon=True)
        self.active.append(d)
        d.thread.start()

    def give_up_stalled(self) -> None:
        """Abandon the decoders that sent nothing for decode_timeout, and tell the run."""
        now = time.monotonic()
        for d in list(self.active):
            with self.handoff:
                since, opening = d.busy_since, d.opening
                if not self.run.overdue(since, now):
                    continue
                d.abandoned = True
            self.active.remove(d)
            # A stall in opening while another decoder is still stuck opening means opens block on something they
            # share (a dead network mount, a decoder library's lock), not on this file: only the first stuck file
            # is remembered as unreadable; this one, and the files not started, are left for the next run rather
            # than each costing decode_timeout and being remembered as unreadable too.
            blockers = [x.cand.path for x in self.stuck if opening and x.opening and x.thread.is_alive()]
            culprit = blockers[0] if blockers else None
            self.stuck.append(d)
            self.run.stalled(d.cand, behind=culprit)
            if culprit is None:
                self.start_one()
                continue
            while True:
                try:
                    c = self.jobs.get_nowait()
                except queue.Empty:
                    break
                self.run.not_tried(c, culprit)

    def close(self) -> None:
        self.stop.set()
        for d in self.active:  # each stops at its next frame; one that hangs is left after decode_timeout
            d.thread.join(timeout=self.run.decode_timeout)

    # -- in the decode threads -----------------------------------------------------------------------------------

    def _work(self, d: _Decoder) -> None:
        with contextlib.suppress(_Stopped):
            while (c := self._take(d)) is not None:
                self._decode(c, d)

    def _take(self, d: _Decoder) -> Candidate | None:
        with self.handoff:
            if self.stop.is_set() or d.abandoned:
                return None
            try:
                d.cand = self.jobs.get_nowait()
            except queue.Empty:
                d.busy_since = None
                return None
            d.busy_since = time.monotonic()
            return d.cand

    def _decode(self, c: Candidate, d: _Decoder) -> None:
        """Send what becomes of one file: its frames, then Finished, Failed or Fatal."""
        with contextlib.closing(self.producer.samples(c, lambda path: self._open(path, d))) as samples:
            for s in samples:
                if isinstance(s, Done):
                    self._put(Finished(c, s.info) if s.info is not None else Failed(c, s.reason), d)
                    return
                try:
                    self._send(c, s, d)
                except WriteError as e:
                    self._put(Fatal(c, e), d)
                    return
                except _Stopped:
                    raise
                except Exception as e:  # noqa: BLE001 - one file's failure must not end the run
                    self._put(Failed(c, vanished(c) or f"{type(e).__name__}: {e}"), d)
                    return

    def _send(self, c: Candidate, s: Sample, d: _Decoder) -> None:
        """Stage a sample's thumbnail, have its text read if the run reads text, and send it."""
        thumb = self.run.stage(s.jpeg)
        try:
            words = self._read(s.rgb, d) if s.square is not None and self.readers is not None else None
            self._put(Sampled(c, s.t, s.square, thumb, s.pixels, words), d)
        except BaseException:
            thumb.unlink(missing_ok=True)
            raise

    def _open(self, path: str, d: _Decoder):
        d.opening = True
        media = open_media(path)  # the module's name, looked up at each call: tests replace it
        d.opening = False
        return media

    def _read(self, rgb: np.ndarray, d: _Decoder) -> Future:
        """The Future of a frame's lines, once an OCR worker has room for it."""
        d.busy_since = None  # waiting for the OCR workers is not a stall
        while (words := self.readers.submit(rgb, timeout=0.2)) is None:
            if self.stop.is_set() or d.abandoned:
                raise _Stopped
        d.busy_since = time.monotonic()
        return words

    def _put(self, msg: Message, d: _Decoder) -> None:
        d.busy_since = None  # waiting for the consumer is not a stall
        while True:
            if self.stop.is_set() or d.abandoned:
                raise _Stopped
            try:
                self.out.put(msg, timeout=0.2)
                break
            except queue.Full:
                pass
        d.busy_since = time.monotonic()


def read_indexed_text(store: Store, readers: TextReaders, interval: float,
                      tick: Callable[[int, int, str], None]) -> int:
    """Read the text of the sources indexed without it: their frames decoded again at the stored times, the
    changed ones read (no model pass). A file that cannot be read now is left for the next run. Calls tick(sources
    done, sources in all, path) before each. How many were read."""
    done = 0
    unread = store.catalog.text_unread()
    for n, source in enumerate(unread):
        tick(n, len(unread), source.path)
        if source.offline:  # read when its drive is back
            continue
        ids, times, _ = store.catalog.source_frames(source.id)
        try:
            words = _frame_words(source.path, dict(zip(np.round(times, 3), ids)), readers, interval)
        except (MediaError, OSError) as e:
            log.warning("could not read the text of %s: %s", source.path, e)
            continue
        store.put_words(source.path, {fid: [w.as_json() for w in f.result()] for fid, f in words.items()})
        done += 1
    if unread:
        tick(len(unread), len(unread), "")
    return done


def _frame_words(path: str, ids: dict[float, int], readers: TextReaders, interval: float) -> dict[int, Future]:
    """Each stored frame's lines being read (a frame unchanged since the last one read takes its Future)."""
    media = open_media(path)
    gate, last, out = ChangeGate(), None, {}
    try:
        for fr in media.frames(interval, OCR_SIDE):
            fid = ids.get(round(fr.t, 3))
            if fid is None:
                continue
            if not gate.unchanged(fr.rgb) or last is None:
                last = readers.submit(fr.rgb)
            out[fid] = last
    finally:
        media.close()
    return out
