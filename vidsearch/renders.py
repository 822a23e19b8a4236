"""Costly ffmpeg outputs ("renders": clips and browser-playable copies of videos): one cache of files under the
index folder, and one bounded queue of jobs that make them off the threads that ask for them.

Cache: `<index>/renders/<source id>-<version>-<params>.mp4`, where version hashes the source's path, size and
modification time (a changed file gets new renders, and those of its earlier version go once one is made) and
params names the output ("proxy", "clip-2500-4000"). A render is written to `<name>.mp4.part` while a lock on its
key is held and renamed into place when ffmpeg succeeds, so a part file is never served; one whose lock is free is
a leftover and goes on the next prune. The locks are OS file locks (filelock: POSIX and Windows) on a fixed set of
lock files in `renders/.locks`, so that processes sharing an index (a server and `vidsearch clip`) make a render
once. After each render, the least recently used renders, clips and copies alike (a cache hit counts as a use), go
until the folder holds at most `max_bytes` (DEFAULT_BYTES), the new one always kept.

Jobs: `workers` threads run ffmpeg; at most `max_queued` jobs wait for them. So that searches stay quick during a
storm of them, renders take at most about half the cores (WORKERS ffmpegs of FFMPEG_THREADS threads each, both from
the cores this process may use) at the lowest CPU priority (nice 19). A request for an output already queued or
being made gets that job; one beyond the bound raises Busy. A job's progress (0..1) comes from ffmpeg's `-progress`
report.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import Busy, MediaError

RENDERS = "renders"
LEGACY = ("clips", "proxies")  # where vidsearch 0.1 kept clips and proxies, each its own way
DEFAULT_BYTES = 4 << 30
CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
MAX_QUEUED = 16
LOCKS = 64  # lock files: a key's lock is one of them, so that they never pile up
KEEP_FINISHED = 256  # finished jobs whose status can still be asked for
_NICE = [nice, "-n", "19"] if (nice := shutil.which("nice")) and os.name == "posix" else []
_LOW_PRIORITY = getattr(subprocess, "BELOW_NORMAL_PRIORITY_CLASS", 0)  # Windows' nice


def share(cpus: int) -> tuple[int, int]:
    """(ffmpeg processes at once, threads of each) for `cpus` cores: about half of them, at least one process of one
    thread (ffmpeg alone takes every core)."""
    workers = max(1, cpus // 4)
    return workers, max(1, cpus // 2 // workers)


WORKERS, FFMPEG_THREADS = share(CPUS)


@dataclass(frozen=True)
class Render:
    """An output to make from one source file. `command(source, target)` gives ffmpeg's arguments; it runs in a
    worker, so it may read the file. `seconds`, the output's length, turns ffmpeg's progress into a fraction;
    `what` finishes "ffmpeg could not …" in errors."""

    kind: str  # "clip" or "proxy"
    source_id: int
    path: str
    params: str
    seconds: float
    command: Callable[[str, str], list[str]]
    what: str
    timeout: float | None = None
    span: tuple[float, float] | None = None  # a clip's start and end (s)


@dataclass(eq=False)
class Job:
    """One render being made, or made. `state`: queued, running, done (`file`) or failed (`error`)."""

    render: Render
    key: str
    id: str = field(default_factory=lambda: secrets.token_urlsafe(9))
    state: str = "queued"
    progress: float = 0.0
    file: Path | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def result(self, timeout: float | None = None) -> Path:
        """The file, once made (waits); raises MediaError if it could not be."""
        if not self.done.wait(timeout):
            raise MediaError(f"ffmpeg has not finished; it is to {self.render.what}.")
        if self.file is None:
            raise MediaError(self.error or f"ffmpeg could not {self.render.what}.")
        return self.file


class Cache:
    """The renders of one index folder."""

    def __init__(self, index_root: str | os.PathLike, max_bytes: int = DEFAULT_BYTES):
        self.root = Path(index_root)
        self.folder = self.root / RENDERS
        self.max_bytes = max_bytes

    def key(self, render: Render) -> str:
        """The render's name in the cache, for the source file as it is now."""
        try:
            st = os.stat(render.path)
        except OSError:
            raise MediaError("The video is no longer on disk.") from None
        version = hashlib.sha1(os.fsencode(render.path) + f"\0{st.st_size}\0{st.st_mtime_ns}".encode())
        return f"{render.source_id}-{version.hexdigest()[:12]}-{render.params}"

    def get(self, key: str) -> Path | None:
        """The finished render, marked used (for pruning, least recently used first); None if there is none."""
        target = self.folder / f"{key}.mp4"
        try:
            os.utime(target)
            return target
        except OSError:
            return None

    def make(self, key: str, render: Render, run: Callable[[list[str]], None]) -> Path:
        """The render, made now by `run(ffmpeg arguments)` unless a process made it meanwhile."""
        (self.folder / ".locks").mkdir(parents=True, exist_ok=True)
        with self._lock(key):
            target = self.get(key)
            if target is None:
                target, part = self.folder / f"{key}.mp4", self.folder / f"{key}.mp4.part"
                try:
                    run(render.command(render.path, str(part)))
                    os.replace(part, target)
                finally:
                    part.unlink(missing_ok=True)
        source, version = key.split("-")[:2]
        for old in self.folder.glob(f"{source}-*.mp4"):
            if old.name.split("-")[1] != version:
                old.unlink(missing_ok=True)  # of an earlier version of the file
        self.prune(keep=target)
        return target

    def prune(self, source_ids: set[int] | None = None, keep: Path | None = None) -> None:
        """Drop leftover part files, renders of sources not in `source_ids` (when given; the folders of vidsearch
        0.1 too), then the least recently used renders until at most max_bytes remain (never `keep`)."""
        if source_ids is not None:
            for old in LEGACY:
                shutil.rmtree(self.root / old, ignore_errors=True)
        if not self.folder.is_dir():
            return
        renders, total = [], 0
        for f in self.folder.iterdir():
            try:
                if f.name.endswith(".mp4.part"):
                    self._drop_part(f)
                elif f.suffix == ".mp4":
                    owner = f.name.split("-")[0]
                    if source_ids is not None and owner.isdigit() and int(owner) not in source_ids:
                        f.unlink()
                        continue
                    st = f.stat()
                    total += st.st_size
                    if f != keep:
                        renders.append((st.st_mtime_ns, st.st_size, f))
            except OSError:
                continue  # removed by another process meanwhile, or open (Windows)
        for _, size, f in sorted(renders):
            if total <= self.max_bytes:
                break
            with contextlib.suppress(OSError):
                f.unlink()
                total -= size

    def _lock(self, key: str) -> FileLock:
        n = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) % LOCKS
        return FileLock(self.folder / ".locks" / f"{n}.lock")

    def _drop_part(self, part: Path) -> None:
        """Remove a part file no one is writing (its maker died): its key's lock is free."""
        lock = self._lock(part.name.removesuffix(".mp4.part"))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return  # being made now
        try:
            part.unlink(missing_ok=True)
        finally:
            lock.release()


def limited(args: list[str], threads: int) -> list[str]:
    """ffmpeg's arguments (one input, the output last) with its progress on stdout and `threads` threads each for
    decoding, filtering and encoding."""
    n, i = str(threads), args.index("-i")
    return [args[0], "-progress", "pipe:1", "-nostats", "-filter_threads", n, *args[1:i], "-threads", n,
            *args[i:-1], "-threads", n, args[-1]]


class Jobs:
    """The bounded queue of renders of one index, and the worker threads that make them."""

    def __init__(self, cache: Cache, workers: int = WORKERS, max_queued: int = MAX_QUEUED,
                 threads: int = FFMPEG_THREADS):
        self.cache, self.workers, self.max_queued, self.threads = cache, workers, max_queued, threads
        self._lock = threading.Lock()
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._active: dict[str, Job] = {}  # by key: queued or running
        self._failed: dict[str, Job] = {}  # by key: ffmpeg could not make it (tried again once the file changes)
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # by id, oldest first
        self._waiting = 0
        self._threads: list[threading.Thread] = []
        self._procs: set[subprocess.Popen] = set()
        self._closed = False

    def submit(self, render: Render) -> Job:
        """The job making `render`: finished at once when it is cached, the one already queued or running for it
        (or that failed for this version of the file), or a new one. Raises Busy when `max_queued` jobs wait
        already, MediaError when the source is gone."""
        key = self.cache.key(render)
        with self._lock:
            job = self._active.get(key) or self._failed.get(key)
            if job is not None:
                return job
            job = Job(render, key)
            file = self.cache.get(key)
            if file is not None:
                job.state, job.file, job.progress = "done", file, 1.0
                job.done.set()
            elif self._closed:
                raise Busy("The server is shutting down.")
            elif self._waiting >= self.max_queued:
                raise Busy(f"The server is busy making {len(self._active)} clips and "
                           "browser-playable copies; try again in a few seconds.")
            else:
                self._waiting += 1
                self._active[key] = job
                self._queue.put(job)
                self._start()
            self._remember(job)
        return job

    def job(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def close(self) -> None:
        """Stop the workers, ending the ffmpeg processes running (their part files are removed); queued jobs
        fail."""
        with self._lock:
            self._closed = True
            procs, threads = list(self._procs), list(self._threads)
        for proc in procs:
            proc.kill()
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout=10)

    def _remember(self, job: Job) -> None:
        self._jobs[job.id] = job
        for old in list(self._jobs)[:max(0, len(self._jobs) - KEEP_FINISHED)]:
            if self._jobs[old].done.is_set():
                job = self._jobs.pop(old)
                if self._failed.get(job.key) is job:
                    del self._failed[job.key]

    def _start(self) -> None:
        if len(self._threads) < self.workers and len(self._threads) < self._waiting + len(self._active):
            thread = threading.Thread(target=self._work, name=f"vidsearch-renders-{len(self._threads)}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            with self._lock:
                self._waiting -= 1
                job.state = "running"
            file, error, lasting = None, None, False
            try:
                if self._closed:  # the rest of the queue fails at once
                    raise MediaError("The server is shutting down.")
                file = self.cache.make(job.key, job.render, lambda args, job=job: self._run(job, args))
            except MediaError as e:
                error, lasting = str(e), not self._closed
            except OSError as e:  # the disk, not the video: worth trying again
                error = f"The file could not be written in {self.cache.folder} ({e.strerror or e})."
            with self._lock:
                del self._active[job.key]
                if lasting:
                    self._failed[job.key] = job
                job.file, job.error, job.state = file, error, "done" if file is not None else "failed"
                job.progress = 1.0 if file is not None else job.progress
            job.done.set()

    def _run(self, job: Job, args: list[str]) -> None:
        """Run ffmpeg at a low priority, following its progress; raises MediaError with its last error line."""
        render = job.render
        args = [*_NICE, *limited(args, self.threads)]
        timed_out = threading.Event()
        with tempfile.TemporaryFile() as log:
            with self._lock:
                if self._closed:
                    raise MediaError("The server is shutting down.")
                proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log,
                                        text=True, errors="replace", creationflags=_LOW_PRIORITY)
                self._procs.add(proc)
            timer = threading.Timer(render.timeout or 0, lambda: (timed_out.set(), proc.kill()))
            if render.timeout:
                timer.start()
            try:
                for line in proc.stdout:
                    us = line.removeprefix("out_time_us=").strip()
                    if line.startswith("out_time_us=") and us.isdigit() and render.seconds > 0:
                        job.progress = min(0.99, int(us) / 1e6 / render.seconds)
                code = proc.wait()
            finally:
                timer.cancel()
                with self._lock:
                    self._procs.discard(proc)
            if timed_out.is_set():
                raise MediaError(f"ffmpeg took too long to {render.what}.")
            if self._closed:
                raise MediaError("The server is shutting down.")
            if code != 0:
                log.seek(0)
                reason = log.read().decode(errors="replace").strip().splitlines()
                raise MediaError(f"ffmpeg could not {render.what}" + (f": {reason[-1]}" if reason else "."))
