"""Folders watched while serving: `vidsearch serve PATH --watch` through the real server (file events and polling),
the Watcher on its own (debounce on a fake clock, one writer, errors, stop, fallback to polling), the CLI's usage
errors, /api/status and the page's indexing line (in a browser too)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from media import segments_video
from watchdog.events import FileModifiedEvent

from vidsearch import watch
from vidsearch.cli import main
from vidsearch.ingest import Progress, Report
from vidsearch.watch import Watcher
from vidsearch.web import create_app


def wait_until(condition, seconds: float = 45, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not met within {seconds:g} s"
        time.sleep(0.05)  # polling interval only


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


@contextlib.contextmanager
def serve(*args: str):
    """`vidsearch serve ... --port 0` as users run it; yields its base URL. Stopped with SIGTERM, as a service
    manager does: it must exit 0 (the watcher stopped and its thread joined)."""
    proc = subprocess.Popen([sys.executable, "-m", "vidsearch.cli", "serve", *args, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: list[str] = []
    base = None
    for line in proc.stdout:  # ends when the server exits, so a failed start cannot hang the test
        lines.append(line)
        if line.startswith("Open http://"):
            base = line.split()[1].rstrip("/")
            break
    assert base, "".join(lines)
    drain = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)  # a full pipe would block it
    drain.start()
    try:
        yield base, lines
    finally:
        proc.terminate()
        code = proc.wait(timeout=60)
        drain.join(timeout=10)
        assert code == 0, "".join(lines)


def names(base: str, text: str) -> list[str]:
    """The files of the hits for `text`, best first (every video, scored)."""
    query = urllib.parse.urlencode({"q": text, "min_score": -1, "k": 50, "per_video": 1})
    return [h["source"] for h in get_json(f"{base}/api/search?{query}")["hits"]]


class StatusRecorder:
    """/api/status polled in a thread: every state seen, so a short run cannot slip between two looks."""

    def __init__(self, base: str):
        self.base, self.seen, self._stop = base, [], threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.seen.append(get_json(f"{self.base}/api/status"))
            time.sleep(0.02)

    def stop(self) -> list[dict]:
        self._stop.set()
        self._thread.join(timeout=30)
        return self.seen


def test_serve_watch_indexes_new_changed_and_deleted_files(tmp_path, tiny_model):
    lib, incoming = tmp_path / "lib", tmp_path / "incoming"
    segments_video(lib / "a.mp4", [(2, "circle", "red")])
    segments_video(incoming / "b.mp4", [(3, "square", "blue")])
    segments_video(incoming / "c.mp4", [(3, "triangle", "green")])
    segments_video(incoming / "a_changed.mp4", [(5, "square", "orange")])
    with serve(str(lib), "--watch", "--index", str(tmp_path / "index"), "--model", tiny_model) as (base, lines):
        assert any(line.startswith("Watching ") and "(file events)" in line for line in lines), lines
        # Served at once: the first run indexes the folder in the background.
        wait_until(lambda: get_json(f"{base}/api/status")["runs"] >= 1, what="the first run")
        start = get_json(f"{base}/api/status")
        assert start["watching"] and start["mode"] == "events" and start["state"] == "idle" and not start["error"]
        assert start["counts"]["videos"] == 1 and start["counts"]["frames"] == 2

        # New files: searchable without a restart, while /api/status reports the run.
        recorder = StatusRecorder(base)
        for name in ("b.mp4", "c.mp4"):
            shutil.copy(incoming / name, lib / name)
        wait_until(lambda: {"b.mp4", "c.mp4"} <= set(names(base, "a blue square")), what="new files searchable")
        wait_until(lambda: get_json(f"{base}/api/status")["state"] == "idle", what="idle after the run")
        seen = recorder.stop()
        indexing = [s for s in seen if s["state"] == "indexing"]
        assert indexing, "no status poll saw the run"
        # Before its first file is done a run knows no total yet (0); then "1 of 2", the file just done.
        assert all(s["files_total"] <= 2 and s["files_done"] <= s["files_total"] for s in indexing), indexing
        assert all(s["file"] in (None, str(lib / "b.mp4"), str(lib / "c.mp4")) for s in indexing), indexing
        assert names(base, "a blue square")[0] == "b.mp4"
        done = get_json(f"{base}/api/status")
        assert done["counts"]["videos"] == 3 and done["counts"]["frames"] == 8 and done["error"] is None
        if done["runs"] == start["runs"] + 1:  # as good as always: the two copies came within the quiet period
            assert done["last_run"]["added"] == 2 and done["last_run"]["frames_added"] == 6

        # A changed file is indexed again (its new content found, its old frames gone); a deleted one leaves the
        # results. Changes that come together are taken together, in one run.
        runs = done["runs"]
        shutil.copy(incoming / "a_changed.mp4", lib / "a.mp4")
        (lib / "b.mp4").unlink()
        wait_until(lambda: get_json(f"{base}/api/status")["counts"] == {**done["counts"], "sources": 2, "videos": 2,
                                                                          "frames": 8 - 2 - 3 + 5},
                   what="the changed file and the deleted one")
        assert names(base, "an orange square")[0] == "a.mp4"
        assert "b.mp4" not in names(base, "a blue square")
        wait_until(lambda: get_json(f"{base}/api/status")["state"] == "idle", what="idle after the changes")
        status = get_json(f"{base}/api/status")
        assert status["runs"] > runs and status["error"] is None
        if status["runs"] == runs + 1:
            assert (status["last_run"]["added"], status["last_run"]["removed"]) == (1, 1)
        page = urllib.request.urlopen(f"{base}/", timeout=30).read().decode()
        assert 'class="indexing"' in page and "status.js" in page
    assert any(line.startswith("Watched folders: ") and " indexed (" in line for line in lines), lines


def test_serve_watch_by_polling(tmp_path, tiny_model):
    """An empty drop folder, its index inside it: served at once, then files found by polling every 0.5 s."""
    lib = tmp_path / "drop"
    lib.mkdir()
    segments_video(tmp_path / "d.mp4", [(3, "triangle", "purple")])
    with serve(str(lib), "--watch", "--poll", "0.5", "--index", str(lib / "index"), "--model", tiny_model) as (
            base, lines):
        assert any("(polling every 0.5 s)" in line for line in lines), lines
        wait_until(lambda: get_json(f"{base}/api/status")["runs"] == 1, what="the first run")
        status = get_json(f"{base}/api/status")
        assert status["mode"] == "polling" and status["counts"]["sources"] == 0 and status["error"] is None
        (lib / "sub").mkdir()
        shutil.copy(tmp_path / "d.mp4", lib / "sub" / "d.mp4")
        wait_until(lambda: names(base, "a purple triangle") == ["d.mp4"], what="a new file found by polling")
        (lib / "sub" / "notes.txt").write_text("the folder still shows something: d.mp4 is gone, not offline")
        (lib / "sub" / "d.mp4").unlink()
        wait_until(lambda: names(base, "a purple triangle") == [], what="a deleted file found by polling")
        wait_until(lambda: get_json(f"{base}/api/status")["state"] == "idle", what="idle")
        assert get_json(f"{base}/api/status")["last_run"]["removed"] == 1


# -- the Watcher on its own -------------------------------------------------------------------------------------


class FakeIndex:
    """Index.add's shape: records runs, can hold one open (`gate`), fail, or tick until stopped."""

    def __init__(self, path: Path):
        self.path = path
        self.calls = 0
        self.running = self.most_running = 0
        self.gate: threading.Event | None = None
        self.errors: list[Exception] = []
        self.forever = False
        self._lock = threading.Lock()

    def add(self, paths, progress=None):
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            progress(Progress(0, 2, 0, 0.0, "/lib/first.mp4"))
            if self.gate is not None:
                assert self.gate.wait(30)
            while self.forever:
                progress(Progress(1, 2, 5, 0.1, "/lib/second.mp4"))
                time.sleep(0.01)
            if self.errors:
                raise self.errors.pop(0)
            return Report(added=["/lib/first.mp4", "/lib/second.mp4"], frames_added=7, seconds=0.5)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def lib(tmp_path) -> Path:
    (tmp_path / "lib").mkdir()
    return tmp_path / "lib"


def test_watcher_runs_once_changes_settle(lib):
    now = [100.0]
    fake = FakeIndex(lib / "index")
    with Watcher(fake, [lib], debounce=2.0, clock=lambda: now[0]) as w:
        w.start(catch_up=False)
        w.changed()
        now[0] += 1.5
        w.changed()  # a file still being copied: the quiet period starts again
        now[0] += 1.9
        w.wake()
        time.sleep(0.3)
        assert fake.calls == 0 and w.status()["state"] == "idle"
        now[0] += 0.2  # 2.1 s without an event
        w.wake()
        wait_until(lambda: w.status()["runs"] == 1, 10, "the run")
        assert fake.calls == 1
        status = w.status()
        assert status["state"] == "idle" and status["error"] is None and status["mode"] == "events"
        assert status["last_run"]["added"] == 2 and status["last_run"]["frames_added"] == 7


def test_watcher_runs_one_at_a_time_and_follows_up(lib):
    fake = FakeIndex(lib / "index")
    fake.gate = threading.Event()
    with Watcher(fake, [lib], debounce=0.0) as w:
        w.start(catch_up=False)
        w.changed()
        wait_until(lambda: w.status()["files_total"] == 2, 10, "the run's progress")
        status = w.status()
        assert (status["state"], status["files_done"], status["file"]) == ("indexing", 0, "/lib/first.mp4")
        for _ in range(3):  # changes during the run: one more run after it, not one each, never two at once
            w.changed()
        time.sleep(0.2)
        assert fake.calls == 1
        fake.gate.set()
        wait_until(lambda: w.status()["runs"] == 2, 10, "the run that follows")
        time.sleep(0.2)
        assert fake.calls == 2 and fake.most_running == 1 and w.status()["state"] == "idle"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice is Linux's")
def test_watcher_indexes_at_a_low_priority_and_so_do_the_threads_it_starts(lib):
    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    seen: dict[str, int] = {}

    class Recording(FakeIndex):
        def add(self, paths, progress=None):
            seen["run"] = nice()
            decode = threading.Thread(target=lambda: seen.__setitem__("started by it", nice()))
            decode.start()
            decode.join()
            return super().add(paths, progress)

    before = nice()
    with Watcher(Recording(lib / "index"), [lib], debounce=0.0) as w:
        w.start()
        wait_until(lambda: w.status()["runs"] == 1, 10, "the run")
    assert seen == {"run": watch.INDEXER_NICE, "started by it": watch.INDEXER_NICE}
    assert nice() == before  # the server's own threads keep theirs


def test_watcher_keeps_running_after_a_failed_run(lib):
    fake = FakeIndex(lib / "index")
    fake.errors.append(OSError(28, "No space left on device"))
    logged: list[str] = []
    with Watcher(fake, [lib], debounce=0.0, log=logged.append) as w:
        w.start()  # catch-up run: fails
        wait_until(lambda: w.status()["runs"] == 1, 10, "the failed run")
        status = w.status()
        assert status["state"] == "idle" and "No space left on device" in status["error"]
        assert status["last_run"] is None
        assert any("No space left on device. Retried on the next change." in line for line in logged), logged
        w.changed()  # the next event: retried, and the error clears
        wait_until(lambda: w.status()["runs"] == 2, 10, "the retry")
        assert w.status()["error"] is None and w.status()["last_run"]["added"] == 2


def test_watcher_stop_ends_a_run_and_joins(lib):
    fake = FakeIndex(lib / "index")
    fake.forever = True
    w = Watcher(fake, [lib], debounce=0.0)
    w.start()
    wait_until(lambda: w.status()["files_done"] == 1, 10, "the run")
    started = time.monotonic()
    w.stop()
    assert time.monotonic() - started < 5
    assert not w._thread.is_alive() and not w._observer.is_alive()
    assert fake.running == 0


def test_watcher_real_events_skip_the_index_folder_and_hidden_files(lib):
    index_dir = lib / "index"
    (index_dir / "thumbs").mkdir(parents=True)
    fake = FakeIndex(index_dir)
    with Watcher(fake, [lib], debounce=0.05) as w:
        assert w.watches(str(lib / "a.mp4")) and w.watches(str(lib / "sub" / "b.jpg"))
        assert not w.watches(str(index_dir / "thumbs" / "1.jpg")) and not w.watches(str(lib / ".a.mp4.part"))
        assert not w.watches(str(lib / ".hidden" / "a.mp4")) and not w.watches(str(lib.parent / "elsewhere.mp4"))
        w.start(catch_up=False)
        (index_dir / "thumbs" / "1.jpg").write_bytes(b"x")  # what a run writes
        (lib / ".a.mp4.part").write_bytes(b"x")  # a copy in progress, named as rsync names it
        time.sleep(0.5)
        assert fake.calls == 0
        os.replace(lib / ".a.mp4.part", lib / "a.mp4")  # the copy done
        wait_until(lambda: fake.calls == 1, 10, "a run for the new file")


def test_polling_lists_neither_the_index_folder_nor_hidden_files(lib):
    for folder in ("index", ".git", "sub"):
        (lib / folder).mkdir()
    for name in ("a.mp4", ".a.mp4.part"):
        (lib / name).write_bytes(b"x")
    (lib / "link").symlink_to(lib)  # a loop: not followed
    w = Watcher(FakeIndex(lib / "index"), [lib])
    assert sorted(e.name for e in w._listdir(str(lib))) == ["a.mp4", "sub"]


def test_watcher_ignores_reads_of_files_it_indexed(lib):
    """A run reading a file gives it a new access time, which inotify reports as "modified": no run for that."""
    video = lib / "a.mp4"
    video.write_bytes(b"x")
    w = Watcher(FakeIndex(lib / "index"), [lib])
    w._run_started = time.time()
    os.utime(video, (time.time(), time.time() - 60))  # planned by the last run, read since
    w.event(FileModifiedEvent(str(video)))
    assert not w._dirty
    video.write_bytes(b"changed")  # written since the run planned
    w.event(FileModifiedEvent(str(video)))
    assert w._dirty


def test_watcher_polls_when_file_events_cannot_be_had(lib, monkeypatch):
    class Refused(watch.Observer):
        def start(self):
            raise OSError(28, "inotify watch limit reached")

    monkeypatch.setattr(watch, "Observer", Refused)
    monkeypatch.setattr(watch, "DEFAULT_POLL", 0.2)
    fake = FakeIndex(lib / "index")
    logged: list[str] = []
    with Watcher(fake, [lib], debounce=0.05, log=logged.append) as w:
        w.start(catch_up=False)
        assert w.mode == "polling" and w.status()["mode"] == "polling"
        assert any("inotify watch limit reached" in line for line in logged)
        (lib / "a.mp4").write_bytes(b"x")
        wait_until(lambda: fake.calls == 1, 10, "a run from polling")


# -- CLI, API, page ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--watch"], "Error: --watch needs the folders to watch"),
    (["--poll", "2"], "Error: --poll goes with --watch"),
])
def test_serve_watch_usage_errors(tmp_path, args, message):
    result = CliRunner().invoke(main, ["serve", "--index", str(tmp_path / "index"), *args])
    assert result.exit_code == 2
    assert result.output.startswith(message) and result.output.count("\n") == 1, result.output


class StubWatcher:
    """What the web reads of a Watcher: its status()."""

    def __init__(self):
        self.state = {"state": "idle", "files_done": 0, "files_total": 0, "file": None, "last_run": None,
                      "error": None, "runs": 0, "mode": "events", "paths": ["/lib"]}

    def status(self) -> dict:
        return dict(self.state)


def test_status_api_and_page(small_index):
    plain = create_app(small_index).test_client()
    status = plain.get("/api/status").get_json()
    assert status["watching"] is False and status["state"] == "idle" and status["last_run"] is None
    assert status["counts"] == small_index.counts()
    page = plain.get("/").get_data(as_text=True)
    assert 'class="indexing' not in page and "status.js" not in page

    stub = StubWatcher()
    stub.state.update(state="indexing", files_done=3, files_total=12, file="/lib/x.mp4")
    client = create_app(small_index, watcher=stub).test_client()
    status = client.get("/api/status").get_json()
    assert status["watching"] is True and status["state"] == "indexing"
    assert (status["files_done"], status["files_total"], status["file"]) == (3, 12, "/lib/x.mp4")
    page = client.get("/").get_data(as_text=True)
    assert "Indexing 3 of 12 files…" in page and "status.js" in page
    stub.state.update(state="idle", error="The disk is full.")
    assert "Indexing failed: The disk is full. Retried on the next change." in client.get("/").get_data(as_text=True)
    stub.state.update(state="indexing")  # retrying: the progress, not the last error
    page = client.get("/").get_data(as_text=True)
    assert "Indexing 3 of 12 files…" in page and "failed" not in page
    stub.state.update(state="idle", error=None)
    assert '" hidden></p>' in client.get("/").get_data(as_text=True)  # idle: the line is there, empty and hidden


def test_indexing_line_in_a_browser(small_index):
    from browsers import CHROMIUM, checked_page, chromium, serving

    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import expect

    stub = StubWatcher()
    c = small_index.counts()
    with serving(create_app(small_index, watcher=stub)) as url, chromium() as browser, \
            checked_page(browser) as page:
        page.goto(url + "/")
        line = page.locator("p.indexing")
        expect(line).to_be_hidden()
        page.evaluate("document.querySelector('.counts').textContent = 'stale'")
        stub.state.update(state="indexing", files_done=3, files_total=12, file="/lib/x.mp4")
        expect(line).to_have_text("Indexing 3 of 12 files…", timeout=10_000)
        expect(page.locator(".counts")).to_have_text("stale")  # no run ended yet
        stub.state.update(state="idle", files_done=0, files_total=0, file=None, runs=1)
        expect(line).to_be_hidden(timeout=10_000)
        expect(page.locator(".counts")).to_have_text(
            f"{c['videos']} video{'' if c['videos'] == 1 else 's'} · {c['images']} photo"
            f"{'' if c['images'] == 1 else 's'} · {c['frames']} frames")
