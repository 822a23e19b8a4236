"""Indexing on a Ray cluster: worker actors decode and embed, this process stays the single writer of the index.

Each worker actor loads the model once (on a GPU when the cluster has them) and indexes one file at a time,
streaming back batches of (times, vectors, JPEG thumbnails). The driver plans the run with ingest.plan(), stages
the thumbnails it receives and commits each source with ingest.commit_source, as the local path does, so a run
killed at any moment leaves whole sources and a re-run picks up where it stopped. Workers read the media (and a
local-dir: model) by path: the paths must be the same on every node.
"""
from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
import time
from typing import Callable, Iterable, Iterator


from .embed import Embedder
from .errors import MediaError, ModelLoadError, RayFailure, RayMissing
from .extract import Candidate, open_media
from .ingest import (CHECKPOINT_SECONDS, DECODE_TIMEOUT, Progress, Report, commit_source, finish_run, fresh_staging,
                     skip_source, stage_jpeg, start_run, thumbnail_jpeg)
from .preprocess import MODEL
from .store import Store

INSTALL = "Indexing on Ray needs Ray, which is not installed: pip install 'vidsearch[ray]'."


def require_ray():
    try:
        import ray
    except ImportError:
        raise RayMissing(INSTALL) from None
    return ray


def check_address(address: str | None) -> None:
    """Refuse Ray Client addresses: results stream back through Ray generators, which Ray Client does not carry."""
    if address and address.startswith("ray://"):
        raise ValueError("Ray Client addresses (ray://) are not supported: run vidsearch on a node of the cluster "
                         "and give the cluster's address (HOST:6379, or auto).")


class _Worker:
    """One model on one Ray worker (wrapped with ray.remote at run time: Ray is optional)."""

    def __init__(self, model: str, pretrained: str, device: str, preprocess: str):
        try:
            self.embedder, self.error = Embedder(model, pretrained or None, device, preprocess=preprocess), None
        except ModelLoadError as e:
            self.embedder, self.error = None, str(e)

    def ready(self) -> tuple[int, float] | str:
        """(dim, default min score), or why the model could not be loaded."""
        return self.error or (self.embedder.dim, self.embedder.default_min_score)

    def index(self, path: str, interval: float, batch_size: int) -> Iterator[tuple]:
        """("frames", times, vectors, jpegs) per batch, then ("done", MediaInfo) or ("error", reason); ("missing",
        host) when this node does not have the path."""
        if not os.path.exists(path):
            yield "missing", socket.gethostname()
            return
        times, squares, jpegs = [], [], []
        try:
            media = open_media(path)
            e = self.embedder
            decoded = ((fr.t, e.prepare(fr.rgb), thumbnail_jpeg(fr.rgb)) for fr in media.frames(interval, e.decode_side))
            try:
                with contextlib.closing(_prefetch(decoded, 2 * batch_size)) as frames:
                    for t, square, jpeg in frames:
                        times.append(t)
                        squares.append(square)
                        jpegs.append(jpeg)
                        if len(times) == batch_size:
                            yield "frames", times, self.embedder.encode_prepared(squares), jpegs
                            times, squares, jpegs = [], [], []
                if times:
                    yield "frames", times, self.embedder.encode_prepared(squares), jpegs
                yield "done", media.info
            finally:
                media.close()
        except MediaError as e:
            yield "error", str(e)
        except Exception as e:  # a decoder bug on one file must not end the run
            yield "error", f"{type(e).__name__}: {e}"


def _prefetch(items: Iterator, depth: int) -> Iterator:
    """Run `items` (decoding) in a thread, `depth` ahead, so the model is not idle while the next frames decode."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                pass
        return False

    def fill() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(end)
        except BaseException as e:  # re-raised in the consumer, where index() turns it into a skip
            put(e)

    thread = threading.Thread(target=fill, daemon=True)
    thread.start()
    try:
        while (item := q.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class Workers:
    """Model actors on a Ray cluster, started on first use. `address`: None for ray.init() (a running local
    cluster or a new one), else a Ray address. `count`: one per GPU when the cluster has GPUs, else one per two
    CPUs, unless given."""

    def __init__(self, address: str | None, model: str, pretrained: str, device: str = "auto",
                 count: int | None = None, preprocess: str = MODEL):
        check_address(address)
        self.ray = require_ray()
        self.address, self.model, self.pretrained, self.device, self.count = address, model, pretrained, device, count
        self.preprocess = preprocess
        self.actors: list = []
        self._owns_ray = False

    def start(self) -> "Workers":
        if self.actors:
            return self
        ray = self.ray
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, logging_level="WARNING")
            except Exception as e:
                where = f"at {self.address}" if self.address else "locally"
                raise RayFailure(f"could not start or reach Ray {where}: {e}") from None
            self._owns_ray = True
        total = ray.cluster_resources()
        gpus, cpus = total.get("GPU", 0), int(total.get("CPU", 1))
        n = self.count or int(gpus) or max(1, cpus // 2)
        node_cpus = max((int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node["Alive"]), default=1)
        self._actor = ray.remote(_Worker).options(num_cpus=max(1, min(node_cpus, cpus // n)),
                                                  num_gpus=min(1, gpus / n))
        self.actors = [self._actor.remote(self.model, self.pretrained, self.device, self.preprocess) for _ in range(n)]
        self.dim, self.default_min_score = self._ready(self.actors)[0]
        return self

    def _ready(self, actors: list) -> list[tuple[int, float]]:
        answers = self.ray.get([a.ready.remote() for a in actors])
        for a in answers:
            if isinstance(a, str):
                raise ModelLoadError(a)
        return answers

    def replace(self, actor):
        """A fresh actor in place of one stuck in a decoder: native code cannot be interrupted, only its process
        ended."""
        self.ray.kill(actor)
        fresh = self._actor.remote(self.model, self.pretrained, self.device, self.preprocess)
        self._ready([fresh])
        self.actors[self.actors.index(actor)] = fresh
        return fresh

    def close(self) -> None:
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []
        if self._owns_ray:
            self.ray.shutdown()
            self._owns_ray = False


def run(store: Store, get_workers: Callable[[], Workers], paths: Iterable[str], *, interval: float,
        batch_size: int = 32, progress: Callable[[Progress], None] | None = None,
        decode_timeout: float = DECODE_TIMEOUT) -> Report:
    """ingest.run on Ray workers. The caller holds the WriterLock; workers start only when there is work. A file
    whose worker sends nothing for `decode_timeout` seconds is skipped and that worker replaced."""
    started = time.monotonic()
    report, todo = start_run(store, paths)
    if todo:
        _index(store, get_workers(), todo, report, interval, batch_size, progress, started, decode_timeout)
    return finish_run(store, report, started)


def _index(store: Store, workers: Workers, todo: list[Candidate], report: Report, interval: float,
           batch_size: int, progress: Callable[[Progress], None] | None, started: float,
           decode_timeout: float) -> None:
    ray = workers.ray
    staging = fresh_staging(store)
    waiting = list(reversed(todo))
    running: dict = {}  # generator -> (actor, candidate, [(t, vector, staged thumbnail)])
    heard: dict = {}  # generator -> when it last sent something (or was started)
    files_done = frames_seen = 0
    last_checkpoint = time.monotonic()

    def give(actor) -> None:
        if waiting:
            c = waiting.pop()
            gen = actor.index.remote(c.path, interval, batch_size)
            running[gen], heard[gen] = (actor, c, []), time.monotonic()

    def give_up_stalled() -> None:
        nonlocal files_done
        for gen in [g for g in running if time.monotonic() - heard[g] > decode_timeout]:
            actor, c, frames = running.pop(gen)
            del heard[gen]
            for _, _, staged in frames:
                staged.unlink(missing_ok=True)
            skip_source(store, report, c, f"decoding stalled for {decode_timeout:g} s (no frame came)")
            files_done += 1
            give(workers.replace(actor))

    for actor in workers.actors:
        give(actor)
    try:
        while running:
            ready, _ = ray.wait(list(running), num_returns=1, timeout=min(1.0, decode_timeout / 4))
            if not ready:
                give_up_stalled()
                continue
            [gen] = ready
            heard[gen] = time.monotonic()
            actor, c, frames = running[gen]
            try:
                kind, *rest = ray.get(next(gen))
            except (StopIteration, ray.exceptions.RayError) as e:
                raise RayFailure(f"a Ray worker failed while indexing {c.path}: {e}") from None
            if kind == "frames":
                for t, vec, jpeg in zip(*rest):
                    frames.append((t, vec, stage_jpeg(jpeg, staging, store.root)))  # a full disk stops the run
                frames_seen += len(rest[0])
            else:
                if kind == "missing" and os.path.exists(c.path):
                    raise RayFailure(f"the Ray worker on {rest[0]} cannot see {c.path}: the media must be at the same "
                                     f"path on every node")
                if kind == "done":
                    commit_source(store, report, c, rest[0], frames)
                else:
                    for _, _, staged in frames:
                        staged.unlink(missing_ok=True)
                    skip_source(store, report, c, "file not found" if kind == "missing" else rest[0])
                files_done += 1
                del running[gen], heard[gen]
                give(actor)
            if progress:
                progress(Progress(files_done, len(todo), frames_seen, time.monotonic() - started, c.path))
            if time.monotonic() - last_checkpoint > CHECKPOINT_SECONDS:
                store.save_vectors()
                last_checkpoint = time.monotonic()
    finally:
        with contextlib.suppress(OSError):  # thumbnails of sources never committed
            for f in staging.iterdir():
                f.unlink(missing_ok=True)
