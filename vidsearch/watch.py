"""Folders watched while serving (`vidsearch serve PATH... --watch`): file events keep the index current.

File events come from watchdog: the platform's own (inotify, FSEvents, ReadDirectoryChanges), or a polling
observer where those cannot be had (it failed to start, e.g. past the inotify watch limit; or asked for with
`poll`, for network mounts, whose changes made elsewhere raise no local event). Events are debounced: a run
starts once none has come for `debounce` seconds, so a file still being copied is indexed when the copy is done.
The run is `Index.add(paths)`, the same incremental, crash-safe run as `vidsearch index` (new and changed files
indexed, gone ones dropped, moved ones taken over, each source committed in its own transaction), in one background
thread: one writer,
and events during a run make another run follow it. Searches keep answering meanwhile: the catalog is read while
it is written (WAL) and the serving Index's FAISS cache takes each committed source as it commits.
The run thread is niced (INDEXER_NICE, Linux, where priority is per thread): it and the decode threads and processes
it starts yield the cores to the server's request threads, so searches stay quick while it indexes.
A watched folder that disappears (a drive unmounted) raises events like a deletion: its sources are kept, marked
offline (ingest/plan.py), never removed by a watcher; `vidsearch index --prune` removes them. Nothing announces a
drive coming back (a watch on a folder that went ends with it, and mounting raises no event), so while sources are
offline their folders are looked at every `recheck` seconds: once one shows files again, the roots are watched
afresh and a run takes the sources back (nothing embedded).
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.polling import PollingObserverVFS

from .ingest.plan import shows_files

if TYPE_CHECKING:
    from .index import Index, Progress, Report

DEBOUNCE = 2.0  # seconds without an event before a run starts
DEFAULT_POLL = 5.0  # seconds between scans when native events cannot be had
RECHECK = 30.0  # seconds between looks at the folders of offline sources, to see whether their drive is back
STOP_TIMEOUT = 30.0  # the longest stop() waits for a run to reach its next file or batch
INDEXER_NICE = 19  # the run thread's nice, inherited by the threads and processes it starts
# Event types that can mean new, changed or deleted media. Not "opened" / "closed_no_write": indexing reads files.
RELEVANT = {"created", "deleted", "modified", "moved", "closed"}


class _Stopped(Exception):
    """Raised in a run's progress callback when the watcher stops: the run ends after its last committed source."""


class _Handler(FileSystemEventHandler):
    def __init__(self, watcher: Watcher):
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        self.watcher.event(event)


class Watcher:
    """Keeps `index` current with `paths` while it runs. `start()` begins watching and, with `catch_up`, runs at once
    for what changed before the watch began (everything, for an index just created); `stop()` stops the observer
    and joins the run thread.
    `status()` says what it is doing. `poll` (seconds) forces the polling observer; `log` gets one line per run
    that changed something and per failure."""

    def __init__(self, index: Index, paths: Iterable[str | os.PathLike], *, debounce: float = DEBOUNCE,
                 poll: float | None = None, log: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, recheck: float = RECHECK):
        if poll is not None and poll <= 0:
            raise ValueError("The polling interval must be a positive number of seconds.")
        self.index = index
        self.paths = [os.fspath(p) for p in paths]
        self.debounce, self.poll, self._log, self._clock, self.recheck = debounce, poll, log, clock, recheck
        self._offline: set[str] = set()  # folders of the sources the last run kept offline
        self._roots = [os.path.realpath(p) for p in self.paths]
        self._index_dir = os.path.realpath(index.path)
        self.mode: str | None = None  # "events" or "polling" once started
        self.poll_interval: float | None = None  # seconds between scans, when polling
        self._observer = None
        self._thread: threading.Thread | None = None
        self._cond = threading.Condition()
        self._dirty = False  # an event came that no run has started on since
        self._last_event = 0.0  # clock() of it
        self._stopping = False
        self._run_started = 0.0  # time.time() when the last run began to plan (files modified before: planned)
        self._state = {"state": "idle", "files_done": 0, "files_total": 0, "file": None}
        self._last_run: dict | None = None
        self._error: str | None = None
        self._runs = 0

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def start(self, *, catch_up: bool = True) -> None:
        self._observer, self.mode = self._observe()
        if catch_up:
            self.changed(settled=True)
        self._thread = threading.Thread(target=self._loop, name="vidsearch-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop watching; a run going ends after the source it is on (sources committed stay)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Watcher:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _observe(self):
        """A started observer of the roots: native events, else polling (asked for, or native failed to start)."""
        if self.poll is None:
            observer = Observer()
            try:
                self._schedule(observer)
                observer.start()
                return observer, "events"
            except Exception as e:  # e.g. past the inotify watch or instance limit (OSError)
                if self._log:
                    reason = getattr(e, "strerror", None) or e
                    self._log(f"File events cannot be had ({reason}); polling every {DEFAULT_POLL:g} s.")
                _quietly_stop(observer)
        self.poll_interval = self.poll or DEFAULT_POLL
        observer = PollingObserverVFS(os.stat, self._listdir, polling_interval=self.poll_interval)
        self._schedule(observer)
        observer.start()
        return observer, "polling"

    def _schedule(self, observer) -> None:
        handler, watched = _Handler(self), set()
        for root in self._roots:
            folder, recursive = (root, True) if os.path.isdir(root) else (os.path.dirname(root), False)
            if (folder, recursive) not in watched:
                watched.add((folder, recursive))
                observer.schedule(handler, folder, recursive=recursive)

    def _listdir(self, path: str | None) -> Iterator[os.DirEntry]:
        """The polling observer's listing: without hidden entries, the index folder (thousands of thumbnails) and
        symlinked folders (a link to an ancestor would never end; file events do not follow links either)."""
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir() and (entry.is_symlink() or os.path.realpath(entry.path) == self._index_dir):
                    continue
                yield entry

    # -- events ----------------------------------------------------------------------------------------------------

    def event(self, event: FileSystemEvent) -> None:
        """A watchdog event: noted (and the quiet period restarted) if it may change what the index holds."""
        if event.event_type not in RELEVANT:
            return
        if event.is_directory and event.event_type in ("modified", "closed"):
            return  # its entries' own events say what changed (listing a folder also "modifies" it: atime)
        paths = [os.fsdecode(event.src_path)]
        if event.event_type == "moved":
            paths.append(os.fsdecode(event.dest_path))
        relevant = [p for p in paths if self.watches(p)]
        if not relevant:
            return
        if event.event_type == "modified" and not event.is_directory and not self._modified_since_run(relevant[0]):
            return
        self.changed()

    def watches(self, path: str) -> bool:
        """Whether a change at `path` may change the index: under a root, not hidden, not in the index folder."""
        path = os.path.abspath(path)  # the observers report paths under the (resolved) roots they watch
        if _under(path, self._index_dir) or _under(os.path.realpath(path), self._index_dir):
            return False
        for root in self._roots:
            if path == root:
                return True
            if _under(path, root) and not any(part.startswith(".") for part in path[len(root):].split(os.sep)):
                return True
        return False

    def _modified_since_run(self, path: str) -> bool:
        """A "modified" event also comes for a new access time (the run itself reading the file): it counts only
        when the file's modification time is later than the last run's planning, which saw every earlier one."""
        try:
            mtime = os.stat(path).st_mtime
        except OSError:
            return True  # gone again: let the run find out
        return mtime >= self._run_started - 1.0

    def changed(self, *, settled: bool = False) -> None:
        """Something changed under the roots: a run follows once changes have been quiet for `debounce` seconds
        (at once with `settled`)."""
        with self._cond:
            self._dirty = True
            self._last_event = self._clock() - (self.debounce if settled else 0.0)
            self._cond.notify_all()

    def wake(self) -> None:
        """Have the run thread look at the clock again (for a test's fake clock)."""
        with self._cond:
            self._cond.notify_all()

    # -- runs ------------------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        _yield_cpu()
        while self._next():
            self._run()

    def _next(self) -> bool:
        """Wait until changes have settled (True) or the watcher stops (False)."""
        with self._cond:
            while not self._stopping:
                if self._dirty:
                    wait = self._last_event + self.debounce - self._clock()
                    if wait <= 0:
                        self._dirty = False
                        self._state = {"state": "indexing", "files_done": 0, "files_total": 0, "file": None}
                        return True
                    self._cond.wait(min(wait, 0.5))
                elif self._offline:
                    self._cond.wait(self.recheck)
                    if self._back_online():
                        self._dirty, self._last_event = True, self._clock() - self.debounce
                else:
                    self._cond.wait()
            return False

    def _back_online(self) -> bool:
        """(holding the condition) Whether a folder of offline sources shows files again; if so the roots are
        watched afresh (the watch on a folder that went has ended)."""
        if self._stopping or not any(shows_files(folder) for folder in self._offline):
            return False
        self._offline = set()
        self._observer.unschedule_all()
        self._schedule(self._observer)
        return True

    def _run(self) -> None:
        self._run_started = time.time()
        try:
            report = self.index.add(self.paths, progress=self._progress)
        except _Stopped:
            return
        except Exception as e:  # a full disk, another process writing: kept running, retried on the next event
            message = (str(e) or type(e).__name__).rstrip(".") + "."
            with self._cond:
                self._error = message
            if self._log:
                self._log(f"Indexing the watched folders failed: {message} Retried on the next change.")
        else:
            summary = _summary(report)
            with self._cond:
                self._last_run, self._error = summary, None
                self._offline = {os.path.dirname(p) for kept in report.offline.values() for p in kept}
            if self._log and (report.added or report.removed or report.moved or report.offline or report.back):
                self._log(_line(report, summary))
        finally:
            with self._cond:
                self._runs += 1
                self._state = {"state": "idle", "files_done": 0, "files_total": 0, "file": None}

    def _progress(self, p: Progress) -> None:
        if self._stopping:
            raise _Stopped
        with self._cond:
            self._state = {"state": "indexing", "files_done": p.files_done, "files_total": p.files_total,
                           "file": p.path or self._state["file"]}

    def status(self) -> dict:
        """{"state": "idle" | "indexing", "files_done", "files_total", "file" (the path last worked on), "last_run"
        (what the last finished run did: added, copies, removed, moved, offline (sources kept), back, skipped,
        unchanged, frames_added, frames_embedded, seconds, finished_at), "error" (why the last run failed, until one
        succeeds), "runs" (how many ended), "mode" ("events" or "polling"), "paths"}."""
        with self._cond:
            return {**self._state, "last_run": self._last_run, "error": self._error, "runs": self._runs,
                    "mode": self.mode, "paths": list(self.paths)}


def _line(report: Report, summary: dict) -> str:
    offline = "".join(f", {len(kept)} under {top} offline (kept)" for top, kept in report.offline.items())
    back = f", {summary['back']} back from offline" if report.back else ""
    return (f"Watched folders: {summary['added']} file{'' if summary['added'] == 1 else 's'} indexed "
            f"({report.frames_added} frames), {summary['moved']} moved (not embedded again), {summary['removed']} "
            f"removed{offline}{back} in {report.seconds:.1f} s.")


def _summary(report: Report) -> dict:
    return {"added": len(report.added), "copies": len(report.copies), "removed": len(report.removed),
            "moved": len(report.moved), "offline": sum(len(kept) for kept in report.offline.values()),
            "back": len(report.back), "skipped": len(report.skipped),
            "unchanged": report.unchanged, "frames_added": report.frames_added,
            "frames_embedded": report.frames_embedded, "seconds": round(report.seconds, 2),
            "finished_at": round(time.time(), 3)}


def _yield_cpu() -> None:
    """Lower this thread's CPU priority to INDEXER_NICE (Linux: nice is per thread, and threads started from this one
    inherit it; elsewhere it would be the whole server's)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):  # lowering one's own priority needs no right; a sandbox may refuse it
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), INDEXER_NICE)


def _under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _quietly_stop(observer) -> None:
    with contextlib.suppress(Exception):  # it never started: nothing of it is left to clean
        observer.stop()
        if observer.is_alive():
            observer.join(1.0)
