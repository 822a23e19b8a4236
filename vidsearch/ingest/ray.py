"""The Ray producer: worker actors on a Ray cluster decode and embed, this process stays the index's only writer.

    driver (this process): Run.start --> one file at a time to each _Worker --> Run (stages thumbnails, commits)
    each _Worker (a Ray actor, one model): sample (samples.Producer, in a thread: _prefetch) --> embed -->
    Embedded batches, then Indexed / Unreadable / Missing, streamed back through a Ray generator

Each worker loads the model once (on a GPU when the cluster has them). The driver stages the thumbnails it receives
and the Run commits each source whole, as on the local path, so a run killed at any moment leaves whole sources and
a re-run picks up where it stopped. A worker that sends nothing for `decode_timeout` s is killed and replaced (a
native decoder cannot be interrupted, only its process ended). Workers read the media (and a local-dir: model) by
path: the paths must be the same on every node.
"""
from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..embed import Embedder
from ..errors import ModelLoadError, RayFailure, RayMissing
from ..extract import Candidate, MediaInfo
from ..preprocess import MODEL
from ..store import Store
from .runs import DECODE_TIMEOUT, Progress, Report, Run
from .samples import Done, Producer, Sample

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


# What a worker streams back for one file: Embedded batches, then one of the others.

@dataclass
class Embedded:
    times: list[float]
    vectors: np.ndarray
    jpegs: list[bytes]  # thumbnails, staged by the driver
    embedded: list[bool]  # False: unchanged since the file's last embedded frame, whose vector it reuses
    pixels: list[bytes]  # pixel signatures (extract.pixels)


@dataclass
class Indexed:
    info: MediaInfo


@dataclass
class Unreadable:
    reason: str


@dataclass
class Missing:
    """This worker's node does not have the file."""

    host: str


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

    def index(self, cand: Candidate, interval: float, batch_size: int,
              reuse: bool = True) -> Iterator[Embedded | Indexed | Unreadable | Missing]:
        if not os.path.exists(cand.path):
            yield Missing(socket.gethostname())
            return
        e = self.embedder
        producer = Producer(e.prepare, e.decode_side, interval, reuse)
        with contextlib.closing(_prefetch(producer.samples(cand), 2 * batch_size)) as samples:
            chunk: list[Sample] = []
            last = None  # the file's last embedded vector
            for s in samples:
                if isinstance(s, Sample):
                    chunk.append(s)
                if chunk and (len(chunk) >= batch_size or isinstance(s, Done)):
                    embedded, last = self._embed(chunk, last)
                    yield embedded
                    chunk = []
                if isinstance(s, Done):
                    yield Indexed(s.info) if s.info is not None else Unreadable(s.reason)

    def _embed(self, chunk: list[Sample], last: np.ndarray | None) -> tuple[Embedded, np.ndarray | None]:
        """A batch of samples embedded (an unchanged one takes the vector before it), and the last vector."""
        todo = [s.square for s in chunk if s.square is not None]
        fresh = iter(self.embedder.encode_prepared(todo) if todo else ())
        vectors = []
        for s in chunk:
            last = next(fresh) if s.square is not None else last
            vectors.append(last)
        return Embedded([s.t for s in chunk], np.stack(vectors), [s.jpeg for s in chunk],
                        [s.square is not None for s in chunk], [s.pixels for s in chunk]), last


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
        except BaseException as e:  # noqa: BLE001 - re-raised in the consumer, where index() turns it into a skip
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

    def start(self) -> Workers:
        if self.actors:
            return self
        ray = self.ray
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, logging_level="WARNING")
            except Exception as e:  # noqa: BLE001 - Ray raises many kinds; each is one sentence here
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
        decode_timeout: float = DECODE_TIMEOUT, reuse: bool = True, prune: bool = False) -> Report:
    """The local run (vidsearch.ingest.run) on Ray workers. The caller holds the WriterLock; workers start only
    when there is work. A file whose worker sends nothing for `decode_timeout` seconds is skipped and that worker
    replaced."""
    with Run.start(store, paths, progress=progress, decode_timeout=decode_timeout, prune=prune) as r:
        if r.todo:
            _Driver(r, get_workers(), interval, batch_size, reuse).drive()
        return r.finish()


@dataclass
class _Job:
    actor: Any
    cand: Candidate
    heard: float  # when its worker last sent something (or was given the file)


class _Driver:
    """Hands the run's files to the workers, one file per worker at a time, and reports what comes back."""

    def __init__(self, r: Run, workers: Workers, interval: float, batch_size: int, reuse: bool):
        self.run, self.workers, self.ray = r, workers, workers.ray
        self.interval, self.batch_size, self.reuse = interval, batch_size, reuse
        self.waiting = list(reversed(r.todo))
        self.jobs: dict[Any, _Job] = {}  # Ray generator -> the file it streams

    def drive(self) -> None:
        for actor in self.workers.actors:
            self._give(actor)
        while self.jobs:
            ready, _ = self.ray.wait(list(self.jobs), num_returns=1, timeout=self.run.stall_poll)
            if ready:
                self._receive(ready[0])
            else:
                self._give_up_stalled()
            self.run.checkpoint()

    def _give(self, actor) -> None:
        if self.waiting:
            c = self.waiting.pop()
            gen = actor.index.remote(c, self.interval, self.batch_size, self.reuse)
            self.jobs[gen] = _Job(actor, c, time.monotonic())

    def _receive(self, gen) -> None:
        job, r = self.jobs[gen], self.run
        job.heard = time.monotonic()
        c = job.cand
        try:
            msg = self.ray.get(next(gen))
        except (StopIteration, self.ray.exceptions.RayError) as e:
            raise RayFailure(f"a Ray worker failed while indexing {c.path}: {e}") from None
        match msg:
            case Embedded(times, vectors, jpegs, embedded, pixels):
                for t, vec, jpeg, fresh, px in zip(times, vectors, jpegs, embedded, pixels):
                    r.sampled(c, t, r.stage(jpeg), vec, embedded=fresh, pixels=px)  # a full disk stops the run
                r.tick(c.path)
                return
            case Missing(host) if os.path.exists(c.path):
                raise RayFailure(f"the Ray worker on {host} cannot see {c.path}: the media must be at the same "
                                 f"path on every node")
            case Missing():
                r.skip(c, "file not found")
            case Indexed(info):
                r.finished(c, info)
            case Unreadable(reason):
                r.skip(c, reason)
            case _:
                raise RayFailure(f"a Ray worker sent {msg!r} while indexing {c.path}")
        del self.jobs[gen]
        self._give(job.actor)

    def _give_up_stalled(self) -> None:
        now = time.monotonic()
        for gen in [g for g, job in self.jobs.items() if self.run.overdue(job.heard, now)]:
            job = self.jobs.pop(gen)
            self.run.stalled(job.cand)
            self._give(self.workers.replace(job.actor))
