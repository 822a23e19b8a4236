"""The public Python API: an index folder you add media to and search. The CLI and the web app call only this."""
from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import ingest
from .catalog import Copy, Line, Skipped, Source, StoredFrame
from .clips import MAX_SECONDS, clip_render
from .embed import DEFAULT_MIN_SCORE, Embedder, resolve_model
from .errors import ClipError, IndexMismatch, MediaError, StoreError
from .ingest import Progress, Report, transcripts
from .playback import Playback, playback
from .preprocess import LEGACY, MODEL, MODES
from .renders import DEFAULT_BYTES, Cache, Job, Jobs
from .search import Hit, ImageQuery, Query, Scorer, image_rgb, media_folders, search, video_scores
from .store import Store
from .textcache import TextEncoder

DEFAULT_INTERVAL = 1.0
_JOBS = threading.Lock()  # one queue of renders per Index, whichever thread asks first


def _query(query: Query | str | None, fields: dict) -> Query:
    if isinstance(query, Query):
        if fields:
            raise TypeError("Give a Query or its fields, not both.")
        return query
    return Query(query, **fields)


def offline_message(source: Source) -> str:
    """Why an offline source's file cannot be had (the web says it for the player and the media routes)."""
    return (f"{os.path.basename(source.path)} is offline: {os.path.dirname(source.path)} could not be read at the "
            "last indexing run (a drive not mounted?). It plays again once the folder is back and indexed.")


def default_index_dir() -> str:
    """`$VIDSEARCH_INDEX`, else ./vidsearch-index."""
    return os.environ.get("VIDSEARCH_INDEX", "vidsearch-index")


@dataclass
class Stats:
    path: str
    model: str
    pretrained: str
    dim: int
    interval: float
    preprocess: str
    min_score: float
    sources: int
    videos: int
    images: int
    frames: int
    skipped: int
    size_bytes: int
    last_run: dict | None
    copies: int = 0  # paths holding an indexed source's exact bytes, indexed once with it
    reads_text: bool = False  # whether the index reads the text in frames (--ocr)
    frames_with_words: int = 0  # frames in which text was read
    speech: str | None = None  # the engine the index hears speech with (--speech), or None
    subtitle_lines: int = 0  # lines of the videos' subtitles
    said_lines: int = 0  # lines of their speech heard

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class Index:
    """A vidsearch index folder.

    Opening is cheap (no model is loaded). The model loads on the first `add` or text/image `search` (seconds;
    a download on first use of a named model). Any number of processes may open one index to search it;
    `add` and `remove` take a lock so that one process writes at a time.

    `model`, `pretrained`, `interval` and `preprocess` apply when the index is created; an existing index keeps
    its own, and asking for different ones raises IndexMismatch. `preprocess` is "model" (pictures reach the model
    as its own open_clip preprocessing feeds them, the default) or "letterbox" (the whole frame, padded to a
    square; indexes made before vidsearch recorded this are letterboxed). `add` skips a file whose decoding yields
    no frame for `decode_timeout` seconds, and raises WriteError (a StoreError) when the folder cannot be written;
    it decodes `decoders` files side by side (default: 2 on a CPU, more beside a GPU: ingest.local.decoders_for).
    Clips and browser-playable copies are cached in the folder up to `cache_bytes` (least recently used go first).
    """

    def __init__(self, path: str | os.PathLike | None = None, *, model: str | None = None,
                 pretrained: str | None = None, interval: float | None = None, preprocess: str | None = None,
                 device: str = "auto", batch_size: int = 32, decode_timeout: float = ingest.DECODE_TIMEOUT,
                 cache_bytes: int = DEFAULT_BYTES, decoders: int | None = None):
        if decode_timeout <= 0:
            raise ValueError("The decode timeout must be a positive number of seconds.")
        if preprocess is not None and preprocess not in MODES:
            raise ValueError(f"Unknown preprocessing {preprocess!r}: one of {', '.join(MODES)}.")
        self.path = Path(path if path is not None else default_index_dir()).absolute()
        self.device = device
        self.batch_size = batch_size
        self.decoders = decoders
        self.decode_timeout = decode_timeout
        self.cache_bytes = cache_bytes
        self._jobs: Jobs | None = None
        self._embedder: Embedder | None = None
        self._load_lock = threading.Lock()  # concurrent first uses load the model once
        self._text_encoder: TextEncoder | None = None
        self._text_lock = threading.Lock()
        self._text_tried = False  # TextEncoder.load was asked (it answers None where the cache lacks the model)
        self._engines: dict = {}  # speech engines by spec
        self._store: Store | None = Store(self.path) if Store.exists(self.path) else None
        if interval is not None and interval <= 0:
            raise ValueError("The interval must be a positive number of seconds.")
        if self._store is None:
            self.model, self.pretrained = resolve_model(model, pretrained)
            self.interval = interval or DEFAULT_INTERVAL
            self.preprocess = preprocess or MODEL
            return
        meta = self._store.catalog.meta
        self.model, self.pretrained, self.interval = meta["model"], meta["pretrained"], float(meta["interval"])
        self.preprocess = meta.get("preprocess", LEGACY)
        if model is not None and resolve_model(model, pretrained) != (self.model, self.pretrained):
            raise IndexMismatch(
                f"{self.path} was built with {self._describe()}; it cannot take vectors from another model. "
                f"Use another --index folder for {resolve_model(model, pretrained)[0]}.")
        if interval is not None and float(interval) != self.interval:
            raise IndexMismatch(f"{self.path} samples every {self.interval:g} s; use another --index folder "
                                f"for an interval of {interval:g} s.")
        if preprocess is not None and preprocess != self.preprocess:
            raise IndexMismatch(f"{self.path} feeds pictures to the model {self.preprocess}-preprocessed; use another "
                                f"--index folder for {preprocess}.")

    def _describe(self) -> str:
        return f"{self.model} ({self.pretrained})" if self.pretrained else self.model

    @property
    def exists(self) -> bool:
        return self._store is not None

    @property
    def _opened(self) -> Store:
        if self._store is None:
            raise StoreError(f"No vidsearch index at {self.path} (run `vidsearch index PATH` first).")
        return self._store

    @property
    def embedder(self) -> Embedder:
        """The CLIP model, loaded on first use (raises ModelLoadError with a one-sentence reason)."""
        with self._load_lock:
            if self._embedder is None:
                self._embedder = Embedder(self.model, self.pretrained or None, self.device,
                                          preprocess=self.preprocess)
            return self._embedder

    def warm(self) -> threading.Thread:
        """Load what searches need in a background thread (a server calls this as it starts): the cached text tower
        first, then the vectors, then the model. A text search arriving meanwhile waits for the first two (a second
        at 1M frames) and goes on with the text tower, not for the model (seconds: PyTorch); an image search waits
        for the model. Nothing is loaded twice."""
        def load() -> None:
            try:
                self._light_encoder()
                if self._store is not None:  # the vectors' own lock makes a search wait for this
                    self._store.vectors.synced()
                    self._store.vectors.sample()
                self.embedder.ready()
                self.embedder.encode_text([""])  # builds the text tower's session
            except Exception:  # the search that needs it raises the same error, with its reason
                pass

        thread = threading.Thread(target=load, name="vidsearch-warm", daemon=True)
        thread.start()
        return thread

    def _encoder(self, q: Query) -> Embedder | TextEncoder | None:
        """What turns q into vectors: for text alone, until the model is loaded, the cached text tower where the
        cache holds it (vidsearch.textcache: no PyTorch to import, same vectors), else the model."""
        if not q.needs_model:
            return None
        if q.image is None and self._embedder is None:
            light = self._light_encoder()
            if light is not None:
                return light
        return self.embedder

    def _light_encoder(self) -> TextEncoder | None:
        """The cached text tower, loaded once (None where the cache does not hold it, or where a device other than
        the CPU was asked for: the model's vectors there are not the CPU export's)."""
        if self.device not in ("auto", "cpu"):
            return None
        with self._text_lock:  # not the model's lock: a text search must not wait for the model's load
            if not self._text_tried:
                self._text_encoder, self._text_tried = TextEncoder.load(self.model, self.pretrained), True
            return self._text_encoder

    def add(self, paths: Iterable[str | os.PathLike], progress: Callable[[Progress], None] | None = None, *,
            ray: bool | str = False, ray_workers: int | None = None, reuse: bool = True,
            ocr: bool | None = None, prune: bool = False, speech: bool | str | None = None) -> Report:
        """Index new and changed files under `paths`, and drop indexed files that are gone from under them.

        Offline is not gone: a source whose folder is missing, empty or cannot be listed (a drive not mounted) is
        kept, marked offline (`Source.offline`, `Hit.offline`; Report.offline), and is back, with nothing embedded,
        once its file is seen again. `prune=True` removes the offline sources under `paths` instead (named in
        Report.removed). A new file that is an indexed source moved (same fingerprint: size and three sampled
        blocks, see vidsearch.ingest.copies) takes that source over, its frames and vectors kept (Report.moved).

        Costs a model load when there is anything to embed, then decoding every new or changed video once (only a
        frame every `interval` s is converted and embedded). With `reuse`, a sample that cannot differ meaningfully
        from its video's last embedded sample (a still shot: see vidsearch.extract.change) takes that vector with no
        model pass; `reuse=False` embeds every sample.
        Unchanged files cost a stat each. Unreadable files are reported in the Report and skipped. A file with the
        exact bytes of an indexed one, or of another file of the run, is not decoded: it is recorded as a copy
        (Report.copies) and found as the other paths (`Hit.also`) of its source's results; telling costs reading
        the files whose sizes are equal, and nothing else.
        `ray=True` (or a Ray address) decodes and embeds on Ray workers instead, `ray_workers` of them (see
        vidsearch.ingest.ray); this process still writes the index. Raises ImportError when Ray is not installed.
        `ocr=True` reads the text in frames from now on (vidsearch.ocr; needs `pip install 'vidsearch[ocr]'`, else
        OcrMissing): the index records it, this and every later add read the text of what they index, and this one
        first reads that of what the index already holds. Not with Ray (IndexMismatch). `ocr=False` stops reading
        text from now on (the words already read stay searchable); None keeps the index's setting.
        Subtitles (sidecar files and text tracks) are always read, after the frames commit, on Ray too (see
        vidsearch.ingest.transcripts): a changed sidecar is read again with no frame embedded again. `speech`
        hears what is said from now on: True (Whisper's default model) or an engine ("pocketsphinx",
        "whisper:MODEL": see vidsearch.speech.engine), loaded now (ModelLoadError when it cannot be); this add
        first hears the videos the index already holds. `speech=False` stops hearing speech (the lines heard stay
        searchable); None keeps the index's setting (`Index.speech`).
        """
        paths = [os.fspath(p) for p in paths]
        if ocr is False:
            self.stop_reading_text()
        listener = self._listener(speech)
        ocr = self._check_ocr(bool(ocr), ray)
        workers = None
        if ray:
            from .ingest import ray as ingest_ray

            workers = ingest_ray.Workers(None if ray is True else ray, self.model, self.pretrained, self.device,
                                         ray_workers, self.preprocess)
        created_dir = not self.path.exists()
        lock = ingest.WriterLock(self.path)
        try:
            if self._store is None:
                model = workers.start() if workers is not None else self.embedder
                self._store = Store.create(self.path, model=self.model, pretrained=self.pretrained,
                                           dim=model.dim, interval=self.interval, preprocess=self.preprocess,
                                           min_score=model.default_min_score)
            if ocr:
                self.read_text()
            if speech is not None:
                self._opened.catalog.set_meta("speech", listener and listener.spec)
            seen = transcripts.Following(progress)  # the transcript pass's progress goes on from the run's
            if workers is not None:
                report = ingest_ray.run(self._store, workers.start, paths, interval=self.interval,
                                        batch_size=self.batch_size, progress=seen,
                                        decode_timeout=self.decode_timeout, reuse=reuse, prune=prune)
            else:
                report = ingest.run(self._store, lambda: self.embedder, paths, interval=self.interval,
                                    batch_size=self.batch_size, progress=seen, decode_timeout=self.decode_timeout,
                                    reuse=reuse, ocr=ocr, prune=prune, workers=self.decoders)
            transcripts.update(self._store, paths, report, listener, progress, seen.last)
            return report
        finally:
            if workers is not None:
                workers.close()
            lock.release()
            if created_dir and self._store is None:  # failed before anything was written: leave no trace
                (self.path / ingest.LOCK_FILE).unlink(missing_ok=True)
                self.path.rmdir()

    @property
    def speech(self) -> str | None:
        """The speech engine this index hears what is said with (switched on by add(speech=...)), or None."""
        return self._store.catalog.meta.get("speech") if self._store is not None else None

    def _listener(self, speech: bool | str | None) -> transcripts.Listener | None:
        """The engine this add hears speech with: one named now is loaded now (ModelLoadError); the index's own is
        loaded when there is something to hear."""
        spec = self.speech if speech is None else ("whisper" if speech is True else speech or None)
        if spec is None:
            return None
        listener = transcripts.Listener(spec, transcripts.engine_name(spec), lambda: self.speech_engine(spec))
        if speech is not None:
            listener.get()
        return listener

    def listen(self, spec: str) -> None:
        """Hear speech with the engine named `spec` from now on (as add(speech=spec), without indexing now): it is
        loaded now (ModelLoadError), the index records it, and the next add hears what the index already holds."""
        self.speech_engine(spec)
        self._opened.catalog.set_meta("speech", spec)

    def speech_engine(self, spec: str):
        """The speech engine named `spec` (vidsearch.speech.engine), loaded once per Index (a watcher's runs share
        it). Raises ModelLoadError with a one-sentence reason."""
        from .speech import engine

        if spec not in self._engines:
            self._engines[spec] = engine(spec)
        return self._engines[spec]

    @property
    def reads_text(self) -> bool:
        """Whether this index reads the text in frames (switched on by add(ocr=True), off by add(ocr=False))."""
        return self._store is not None and bool(self._store.catalog.meta.get("ocr", False))

    def read_text(self) -> None:
        """Read the text in frames from now on (as add(ocr=True), without indexing now): the index records it, and
        the next add reads the text of what it already holds. Raises OcrMissing without RapidOCR."""
        from .ocr import require

        require()
        if not self.reads_text:
            self._opened.catalog.set_meta("ocr", True)

    def stop_reading_text(self) -> None:
        """Read no more text from now on (the words already read stay searchable; read_text() takes it up again,
        reading first what was indexed meanwhile)."""
        if self.reads_text:
            self._opened.catalog.set_meta("ocr", False)

    def _check_ocr(self, ocr: bool, ray) -> bool:
        """Whether this add reads text; raises OcrMissing when it should and cannot, IndexMismatch with Ray."""
        ocr = ocr or self.reads_text
        if ocr and ray:
            raise IndexMismatch("Text in frames (--ocr) is read only by the local indexer, not on Ray workers; "
                                "index without --ray" + (" (this index reads text)." if self.reads_text else "."))
        if ocr:
            from .ocr import require

            require()
        return ocr

    def remove(self, source: str | os.PathLike) -> bool:
        """Drop one path from the index. True if it was there. A byte copy of a source (see `add`) just goes; a
        source with a copy moves to the copy's path, its id and frames unchanged, so its content stays searchable."""
        lock = ingest.WriterLock(self.path)
        try:
            removed = self._opened.remove_source(os.path.realpath(source))
            self._opened.save_vectors()
            return removed
        finally:
            lock.release()

    @property
    def min_score(self) -> float:
        """The cosine score under which nothing is shown as a match (the model's default, see README)."""
        return float(self._opened.catalog.meta.get("min_score", DEFAULT_MIN_SCORE))

    def search(self, query: Query | str | None = None, **fields) -> list[Hit]:
        """The best moments, best first: `query` is a Query, or its text with the Query's other fields as keywords
        (image, like, negative, w_text, w_image, w_negative, k, min_score, per_video, and the filters kind, folder,
        after, before, min_duration, max_duration: see Query).

        The positive part mixes text, an image (path, PIL image or RGB array) and a stored frame ("more like
        this"), each weighted; the negative text pushes what it names down and out. `min_score` defaults to the
        index's (`Index.min_score`; -1 shows everything); when no moment reaches it, the two nearest come back with
        `weak=True`. Cost: one model pass per text or image part (plus a model load the first time); a frame needs
        no model."""
        q = _query(query, fields)
        return search(self._opened, self._scorer(q), q, interval=self.interval, min_score=self._min_score(q))

    def video(self, source_id: int, query: Query | str | None = None,
              **fields) -> tuple[list[tuple[float, float]], list[Hit]]:
        """For one video: the query's score at every sample [(t, score)], and all its moments, best first."""
        q = _query(query, fields)
        return video_scores(self._opened, self._scorer(q), q, source_id, interval=self.interval,
                            min_score=self._min_score(q))

    def _scorer(self, q: Query) -> Scorer:
        return Scorer.for_query(self._opened, self._encoder(q), q)

    def _min_score(self, q: Query) -> float:
        return self.min_score if q.min_score is None else q.min_score

    def query_image(self, image: ImageQuery) -> np.ndarray:
        """An image to search with, decoded as this index's model needs it (an RGB array; keep it to search with
        it again without decoding it again). Raises QueryError if it cannot be read."""
        return image_rgb(image, self.embedder.decode_side)

    def sources(self) -> list[Source]:
        """Every indexed video and image, by path."""
        return self._opened.catalog.sources()

    def source(self, source_id: int) -> Source | None:
        return self._opened.catalog.source(source_id)

    def folders(self) -> list[str]:
        """The folders a search can be limited to (Query.folder): those that hold indexed media and those between
        them and the folder they all share, sorted."""
        return media_folders(self._opened.catalog.folders())

    def frame(self, frame_id: int) -> StoredFrame | None:
        return self._opened.catalog.frames([frame_id]).get(frame_id)

    def frames(self, source_id: int) -> tuple[list[int], np.ndarray, np.ndarray]:
        """One source's sampled frames in time order: (frame ids, times in seconds, unit vectors)."""
        return self._opened.catalog.source_frames(source_id)

    def thumbnail(self, frame_id: int) -> Path | None:
        """The JPEG thumbnail of a frame in the index (None for an id that is not)."""
        return self._opened.thumbnail(frame_id) if self.frame(frame_id) is not None else None

    def copies(self, source_id: int | None = None) -> list[Copy]:
        """The paths holding an indexed source's exact bytes (of one source, or all), by path: indexed once, with
        the source, and named in its hits' `also`."""
        return self._opened.catalog.copies(source_id)

    def transcript(self, source_id: int) -> list[Line]:
        """The lines of a video's subtitles and of its speech heard (with --speech), by time; empty when it has
        none or there is no such video."""
        return self._opened.catalog.lines_of(source_id)

    def skipped(self) -> list[Skipped]:
        """The files that could not be indexed, with the reason, until they change."""
        return self._opened.catalog.skipped()

    @property
    def jobs(self) -> Jobs:
        """The bounded queue of clips and browser-playable copies being made for this index (see
        vidsearch.renders); the first use drops cached ones of sources removed since."""
        with _JOBS:
            if self._jobs is None:
                self._jobs = Jobs(Cache(self.path, self.cache_bytes))
                self._jobs.cache.prune({s.id for s in self.sources()})
            return self._jobs

    def playback(self, source_id: int) -> Playback | None:
        """How a browser can play a video of the index (None if there is no such video): the original, or its
        H.264 copy, ready, being made (queued now if needed), busy (no room in the queue) or failed."""
        source = self.source(source_id)
        if source is None or source.kind != "video":
            return None
        if source.offline:
            return Playback("failed", error=offline_message(source))
        return playback(self.jobs, source_id, source.path, source.duration)

    def clip_job(self, source_id: int, start: float, end: float, *, limit: float = MAX_SECONDS) -> Job:
        """The job making an MP4 of [start, end] seconds of a video (see `clip`), finished at once when it is
        cached; returns without waiting. Raises ClipError as `clip` does, MediaError when the video is offline,
        Busy when the queue is full."""
        source = self.source(source_id)
        if source is None or source.kind != "video":
            raise ClipError(f"There is no video {source_id} in the index.")
        if source.offline:
            raise MediaError(offline_message(source))
        return self.jobs.submit(clip_render(source.id, source.path, source.duration, start, end, limit))

    def job(self, job_id: str) -> Job | None:
        """A clip or copy queued, being made or made lately, by its id."""
        return self.jobs.job(job_id)

    def clip(self, source_id: int, start: float, end: float, *, limit: float = MAX_SECONDS) -> Path:
        """An MP4 (H.264/AAC) of [start, end] seconds of a video of the index, cut frame-accurately: its first frame
        is the frame shown at `start`, and it lasts end - start (see vidsearch.clips). Cached under the index
        folder: the first time costs decoding and encoding the span (seconds for a 10 s HD clip), later calls a
        stat. Waits for it. Raises ClipError (a QueryError) for an unknown video or a span that is empty, outside
        the video or longer than `limit` seconds, Busy when the queue is full, and MediaError when the file is gone
        or offline or ffmpeg cannot cut it."""
        return self.clip_job(source_id, start, end, limit=limit).result()

    def counts(self) -> dict:
        """How many sources, videos, images, frames, skipped files and byte copies the index holds (cheap queries)."""
        return self._opened.catalog.counts()

    def stats(self) -> Stats:
        """Counts and settings; reads the catalog only."""
        s = self._opened
        c = s.catalog.counts()
        last_run = s.catalog.read_meta().get("last_run")  # another process may have indexed since this one opened
        return Stats(str(self.path), self.model, self.pretrained, s.vectors.dim, self.interval, self.preprocess,
                     self.min_score, c["sources"], c["videos"], c["images"], c["frames"], c["skipped"],
                     s.size_on_disk(), last_run, c["copies"], self.reads_text,
                     s.catalog.text_counts()["frames_with_words"], self.speech, **{
                         k: v for k, v in s.catalog.line_counts().items() if k.endswith("_lines")})

    def close(self) -> None:
        """Stop making clips and browser copies (ending the ffmpeg processes running) and close the catalog."""
        if self._jobs is not None:
            self._jobs.close()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
