"""The transcript pass: what is said in the indexed videos, read after a run's frames commit, in the process that
writes the index (local and Ray runs alike), under the WriterLock.

Subtitles are always read (extract/subtitles.py: sidecar files and text tracks, no model); speech is heard when the
index listens (speech.py, opt-in: `index --speech`). A video is read when
- its subtitles were never read (a new or changed video, or one indexed before catalog format 7): its subtitles,
  and its speech when the index listens;
- it lies under the run's paths and its sidecar files changed (one added, removed, or of another size or mtime):
  its subtitles only; no frame is decoded or embedded again;
- the index listens with an engine that has not heard it (speech just switched on, or another engine): its speech.
Offline videos, and those whose folder cannot be listed, wait for a later run. What cannot be read is named in
Report.problems, beside its video; it never stops the run.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ..catalog import Source
from ..extract.subtitles import EXTENSIONS, read_subtitles, sidecar_stamps
from ..speech import DEFAULT_WHISPER, Engine, transcribe_video
from ..store import Store
from ..transcript import SAID, SUBTITLE, Transcript
from .runs import Progress, Report

Stamps = dict[str, tuple[int, float]]


def engine_name(spec: str) -> str:
    """The name an engine will give itself (Engine.name) from the spec a user names it by (speech.engine), without
    loading it: what the catalog records as having heard a video."""
    name, _, model = spec.partition(":")
    return f"whisper:{model or DEFAULT_WHISPER}" if name == "whisper" else spec


@dataclass
class Listener:
    """The engine an index hears speech with: as the user named it, the name it gives itself, and how to have it
    (loaded on first need: a Whisper model takes seconds, and most runs have nothing to hear)."""

    spec: str
    name: str
    get: Callable[[], Engine]


class Following:
    """A run's progress callback that remembers the last progress, for the transcript pass to go on from."""

    def __init__(self, progress: Callable[[Progress], None] | None):
        self.progress, self.last = progress, None

    def __call__(self, p: Progress) -> None:
        self.last = p
        if self.progress is not None:
            self.progress(p)


@dataclass
class Due:
    source: Source
    stamps: Stamps  # its sidecar files now
    subtitles: bool  # read its subtitles
    speech: bool  # hear its speech


class _Folders:
    """Sidecar stamps, with each folder listed once: a folder with no subtitle file at all (most) costs one listing
    for all its videos, not one per video."""

    def __init__(self):
        self._subtitled: dict[str, bool | None] = {}  # None: could not be listed

    def stamps(self, video: str) -> Stamps | None:
        folder = os.path.dirname(video)
        if folder not in self._subtitled:
            try:
                self._subtitled[folder] = any(os.path.splitext(n)[1].lower() in EXTENSIONS for n in os.listdir(folder))
            except OSError:
                self._subtitled[folder] = None
        subtitled = self._subtitled[folder]
        if subtitled is None:
            return None
        return sidecar_stamps(Path(video)) if subtitled else {}


def plan(store: Store, paths: Iterable[str], speech: str | None) -> list[Due]:
    """The videos this run reads the subtitles or hears the speech of (see the module's docstring)."""
    done = store.catalog.transcribed()
    tops = [os.path.realpath(p).rstrip(os.sep) for p in paths]
    folders, out = _Folders(), []
    for s in store.catalog.sources():
        if s.kind != "video" or s.offline:
            continue
        state = done.get(s.id)
        heard = speech is None or (state is not None and state[1] == speech)
        under = any(s.path == t or s.path.startswith(t + os.sep) for t in tops)
        if state is not None and heard and not under:
            continue
        stamps = folders.stamps(s.path)
        if stamps is None:
            continue
        read = state is None or stamps != state[0]
        if read or not heard:
            out.append(Due(s, stamps, read, not heard))
    return out


def update(store: Store, paths: Iterable[str], report: Report, listener: Listener | None,
           progress: Callable[[Progress], None] | None = None, last: Progress | None = None) -> None:
    """Read what is due (plan) into the catalog, one transaction per video, counting it and its problems in
    `report`. Hearing speech takes minutes a video: then progress continues from the run's `last` one, these videos
    counted as files after the run's own; reading subtitles alone (a fraction of a second a video) is not counted,
    so that a run's "N of M files" stays its files."""
    started = time.monotonic()
    todo = plan(store, paths, listener.name if listener else None)
    if not any(due.speech for due in todo):
        progress = None
    for n, due in enumerate(todo):
        _tick(progress, last, n, len(todo), due.source.path, started)
        _read(store, due, listener if due.speech else None, report)
    if todo:
        _tick(progress, last, len(todo), len(todo), "", started)
        report.seconds += time.monotonic() - started
        store.catalog.set_meta("last_run", {"finished_at": time.time(), **report.as_dict()})


def _read(store: Store, due: Due, listener: Listener | None, report: Report) -> None:
    video = Path(due.source.path)
    out, layers = Transcript(), []
    if due.subtitles:
        out.extend(read_subtitles(video))
        layers.append(SUBTITLE)
    if listener is not None:
        out.extend(transcribe_video(video, listener.get()))
        layers.append(SAID)
    store.put_lines(due.source.id, [(s.start, s.end, s.layer, s.source, s.text) for s in out.segments], layers,
                    due.stamps if due.subtitles else None, listener.name if listener else None)
    report.transcribed += 1
    report.lines += len(out.segments)
    report.problems += [(due.source.path, p) for p in out.problems]


def _tick(progress: Callable[[Progress], None] | None, last: Progress | None, done: int, total: int, path: str,
          started: float) -> None:
    if progress is None:
        return
    base = last or Progress(0, 0, 0, 0.0)
    progress(Progress(base.files_done + done, base.files_total + total, base.frames,
                      base.seconds + time.monotonic() - started, path, base.embedded, base.copies))
