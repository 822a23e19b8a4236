"""Clips and browser-playable copies as jobs: one bounded queue whose ffmpeg runs off the request threads (searches
answer meanwhile, a request past the bound gets 503 with Retry-After), progress and results through the HTTP API and
the player, and one cache of their files pruned to a byte budget, least recently used first.

ffmpeg is held where a test needs a job to stay running: the jobs' ffmpeg commands are started through a small
Python stand-in that reports one second of progress, then waits for the test to let it go on as the real ffmpeg."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from browsers import CHROMIUM, checked_page, chromium, serving
from media import FFMPEG, draw, encode

from vidsearch.clips import clip_render
from vidsearch.index import Index
from vidsearch.renders import Cache, Jobs, share
from vidsearch.web import create_app

# Reports 1 s done, waits for a line on stdin, then becomes the real command.
STAND_IN = ("import os, sys\nsys.stdout.write('out_time_us=1000000\\nprogress=continue\\n')\nsys.stdout.flush()\n"
            "sys.stdin.readline()\nos.execv(sys.argv[1], sys.argv[1:])\n")


class Held:
    """The jobs' ffmpeg processes, each held after reporting 1 s of progress until `release`."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.started = threading.Semaphore(0)
        self.holding = True
        self._popen = subprocess.Popen
        self._lock = threading.Lock()  # a process started as release() runs is released too

    def popen(self, cmd, *args, **kwargs):
        with self._lock:
            if FFMPEG not in cmd or "-progress" not in cmd or not self.holding:
                return self._popen(cmd, *args, **kwargs)
            proc = self._popen([sys.executable, "-c", STAND_IN, *cmd], *args, **{**kwargs, "stdin": subprocess.PIPE})
            self.procs.append(proc)
        self.started.release()
        return proc

    def wait_started(self, n: int = 1) -> None:
        for _ in range(n):
            assert self.started.acquire(timeout=60), "no ffmpeg started"

    def hold(self) -> None:
        """Hold the ffmpeg processes started from now on."""
        with self._lock:
            self.holding = True

    def release(self) -> None:
        """Let every held ffmpeg go on, and hold no more."""
        with self._lock:
            self.holding = False
        for proc in self.procs:
            with contextlib.suppress(OSError, ValueError):
                proc.stdin.write("\n")
                proc.stdin.close()


def eventually(check, what: str):
    """check()'s first true value, asked until it has one (a wait, not a measure: a minute is far beyond need)."""
    deadline = time.monotonic() + 60
    while not (value := check()):
        assert time.monotonic() < deadline, what
        time.sleep(0.02)
    return value


@pytest.fixture(scope="module")
def library(tmp_path_factory, shapes_video) -> Path:
    """shapes.mp4 (H.264, 12 s) and two AVIs (MPEG-4 part 2, which browsers cannot play: they get proxies)."""
    folder = tmp_path_factory.mktemp("jobs") / "library"
    folder.mkdir()
    shutil.copy(shapes_video[0], folder / "shapes.mp4")
    for name, colour in [("a.avi", "red"), ("b.avi", "blue")]:
        encode(folder / name, [draw("circle", colour)] * 50, codec="mpeg4", extra=["-vtag", "DIVX", "-q:v", "4"])
    return folder


@pytest.fixture(scope="module")
def index(tmp_path_factory, library, tiny_model):
    with Index(tmp_path_factory.mktemp("jobs") / "index", model=tiny_model) as idx:
        assert not idx.add([library]).skipped
        yield idx


def sid(index: Index, name: str) -> int:
    return next(s.id for s in index.sources() if os.path.basename(s.path) == name)


@pytest.fixture
def held(monkeypatch) -> Held:
    held = Held()
    monkeypatch.setattr(subprocess, "Popen", held.popen)
    yield held
    held.release()


@pytest.fixture
def jobs(index, tmp_path, monkeypatch):
    """The index's queue for this test: one worker, at most two jobs waiting, a cache of its own."""
    jobs = Jobs(Cache(tmp_path / "index"), workers=1, max_queued=2)
    monkeypatch.setattr(index, "_jobs", jobs)
    yield jobs
    jobs.close()


@pytest.fixture(scope="module")
def app(index):
    return create_app(index)


def test_a_full_queue_answers_503_with_retry_after_and_one_output_is_one_job(app, index, jobs, held):
    client, video = app.test_client(), sid(index, "shapes.mp4")
    running = client.get(f"/clip/{video}?start=0&end=1", headers={"Accept": "application/json"})
    assert running.status_code == 202 and running.headers["Retry-After"] == "2"
    held.wait_started()
    queued = [client.get(f"/api/clip/{video}?start={t}&end={t + 1}") for t in (1, 2)]
    assert [r.status_code for r in queued] == [202, 202] and [r.json["state"] for r in queued] == ["queued"] * 2
    # The same clip again, by either URL: the same job, not another.
    assert client.get(f"/api/clip/{video}?start=0&end=1.000").json["id"] == running.json["id"]
    assert client.get(f"/api/clip/{video}?start=1&end=2").json["id"] == queued[0].json["id"]

    full = client.get(f"/clip/{video}?start=3&end=4")
    assert full.status_code == 503 and full.headers["Retry-After"] == "5"
    assert "busy making 3 clips and browser-playable copies; try again in a few seconds." in full.get_data(True)
    api = client.get(f"/api/clip/{video}?start=3&end=4")
    assert api.status_code == 503 and api.headers["Retry-After"] == "5" and "try again" in api.json["error"]
    proxy = client.get(f"/play/{sid(index, 'a.avi')}")  # browser copies share the queue
    assert proxy.status_code == 503 and proxy.headers["Retry-After"] == "5"
    assert client.get(f"/api/play/{sid(index, 'a.avi')}").json["state"] == "busy"
    assert len(held.procs) == 1  # one ffmpeg at a time: the queued jobs wait for the worker

    held.release()
    for r in [running, *queued]:
        assert index.job(r.json["id"]).result(60).is_file()
    assert client.get(f"/clip/{video}?start=3&end=4").status_code == 202  # room again


def test_searches_answer_while_the_queue_is_full_and_its_worker_busy(index, jobs, held):
    """More clip requests than the server has threads, while ffmpeg is held: each answers at once (202 or 503),
    and a search made meanwhile gets its results."""
    video = sid(index, "shapes.mp4")
    with serving(create_app(index)) as url:  # 4 threads
        answers: list[tuple[int, dict]] = []

        def ask(path: str) -> None:
            try:
                with urllib.request.urlopen(url + path, timeout=60) as r:
                    answers.append((r.status, json.load(r)))
            except urllib.error.HTTPError as e:
                answers.append((e.code, json.load(e)))

        storm = [threading.Thread(target=ask, args=(f"/api/clip/{video}?start={t}&end={t + 1}",)) for t in range(8)]
        storm += [threading.Thread(target=ask, args=(f"/api/play/{sid(index, name)}",)) for name in ("a.avi", "b.avi")]
        for t in storm:
            t.start()
        held.wait_started()
        for t in storm:
            t.join(60)
        assert len(answers) == 10
        # 1 running, 2 waiting; the other clips refused, the other copies "busy"
        accepted = [a for a in answers if a[0] == 202 or a[1].get("state") == "preparing"]
        assert len(accepted) == 3
        assert all(code == 503 or body.get("state") == "busy" for code, body in answers if (code, body) not in accepted)
        with urllib.request.urlopen(url + "/api/search?q=a+red+circle&min_score=-1", timeout=60) as r:
            found = json.load(r)
        assert r.status == 200 and found["count"] > 0
        assert len(held.procs) == 1 and held.procs[0].poll() is None  # ffmpeg was still held


def test_a_jobs_progress_and_result_are_seen_through_the_http_api(app, index, jobs, held):
    client, video = app.test_client(), sid(index, "shapes.mp4")
    job = client.get(f"/api/clip/{video}?start=4&end=6").json
    assert job["kind"] == "clip" and job["source_id"] == video and job["url"] is None
    held.wait_started()
    # ffmpeg said 1 s of the 2 s clip is done
    status = eventually(lambda: (s := client.get(job["status_url"]).json)["progress"] > 0 and s, "no progress")
    assert (status["state"], status["progress"], status["url"]) == ("running", 0.5, None)
    avi = sid(index, "a.avi")
    copy = client.get(f"/api/play/{avi}").json
    assert (copy["state"], copy["progress"], copy["url"]) == ("preparing", 0.0, None)

    held.release()
    index.job(job["id"]).result(60)
    done = client.get(job["status_url"]).json
    assert (done["state"], done["progress"], done["error"]) == ("done", 1.0, None)
    assert done["url"] == f"/clip/{video}?start=4&end=6"
    clip = client.get(done["url"])
    assert clip.status_code == 200 and clip.mimetype == "video/mp4" and clip.data[4:8] == b"ftyp"
    assert clip.headers["Content-Disposition"] == "attachment; filename=shapes_0m4s-0m6s.mp4"
    index.playback(avi).job.result(60)
    assert client.get(f"/api/play/{avi}").json == {"source_id": avi, "state": "ready", "proxy": True,
                                                    "url": f"/play/{avi}", "progress": None, "error": None}
    assert client.get("/api/jobs/nosuchjob").status_code == 404


def test_a_browser_is_shown_a_clip_jobs_progress_then_a_page_that_reloads_gets_the_clip(app, index, jobs, held):
    """Without JavaScript, /clip answers a browser with a page that asks again (Refresh) until it downloads."""
    client, video = app.test_client(), sid(index, "shapes.mp4")
    page = client.get(f"/clip/{video}?start=6&end=8", headers={"Accept": "text/html,*/*;q=0.8"})
    assert page.status_code == 202 and page.headers["Refresh"] == "2" and "Making the clip" in page.get_data(True)
    held.wait_started()
    held.release()
    index.job(page.headers["Location"].rsplit("/", 1)[1]).result(60)
    again = client.get(f"/clip/{video}?start=6&end=8", headers={"Accept": "text/html,*/*;q=0.8"})
    assert again.status_code == 200 and again.headers["Content-Disposition"].startswith("attachment")


def test_the_cache_prunes_to_its_byte_budget_least_recently_used_first_across_clips_and_copies(index, jobs):
    video, avi = sid(index, "shapes.mp4"), sid(index, "a.avi")
    a = index.clip(video, 0, 1)
    copy = index.playback(avi).job.result(60)
    b = index.clip(video, 1, 2)
    for n, f in enumerate([copy, a, b]):  # used in this order, long ago
        os.utime(f, ns=(10**18 + n * 10**9, 10**18 + n * 10**9))
    assert index.clip(video, 0, 1) == a  # a cache hit is a use: a is now the most recent
    size = {f: f.stat().st_size for f in (a, b, copy)}

    jobs.cache.max_bytes = size[a] + size[b]
    jobs.cache.prune()
    assert not copy.exists() and a.is_file() and b.is_file()  # the copy was used least recently
    jobs.cache.max_bytes = size[a] + size[b] - 1
    jobs.cache.prune()
    assert a.is_file() and not b.exists()
    jobs.cache.max_bytes = 1  # a new render is kept even over the budget; the others go
    c = index.clip(video, 2, 3)
    assert c.is_file() and not a.exists()
    assert sorted(p.name for p in jobs.cache.folder.glob("*.mp4*")) == [c.name]


@pytest.mark.parametrize("cpus, workers, threads", [(1, 1, 1), (2, 1, 1), (4, 1, 2), (8, 2, 2), (16, 4, 2)])
def test_renders_take_about_half_the_cores(cpus, workers, threads):
    assert share(cpus) == (workers, threads)
    assert workers * threads <= max(1, cpus // 2)


def test_ffmpeg_runs_niced_with_the_queues_threads(index, tmp_path, monkeypatch):
    started, popen = [], subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", lambda cmd, *a, **k: started.append(cmd) or popen(cmd, *a, **k))
    jobs = Jobs(Cache(tmp_path / "index"), workers=1, threads=3)
    monkeypatch.setattr(index, "_jobs", jobs)
    try:
        clip = index.clip(sid(index, "shapes.mp4"), 0, 1)
    finally:
        jobs.close()
    assert clip.is_file()
    (cmd,) = [c for c in started if FFMPEG in c]
    if os.name == "posix":
        assert cmd[1:3] == ["-n", "19"] and cmd[3] == FFMPEG
    ffmpeg = cmd[cmd.index(FFMPEG):]
    # decoder (before the input), filters, encoder (before the output): 3 threads each
    assert ffmpeg[ffmpeg.index("-i") - 2:ffmpeg.index("-i")] == ["-threads", "3"]
    assert ffmpeg[-3:-1] == ["-threads", "3"] and "-filter_threads" in ffmpeg


def test_part_files_are_never_served_and_leftovers_go(app, index, jobs):
    client, video = app.test_client(), sid(index, "shapes.mp4")
    source = index.source(video)
    key = jobs.cache.key(clip_render(video, source.path, source.duration, 8, 9))
    jobs.cache.folder.mkdir(parents=True)
    part = jobs.cache.folder / f"{key}.mp4.part"
    part.write_bytes(b"not a clip yet")  # as a maker that died left it
    first = client.get(f"/clip/{video}?start=8&end=9", headers={"Accept": "application/json"})
    assert first.status_code == 202
    index.job(first.json["id"]).result(60)
    clip = client.get(f"/clip/{video}?start=8&end=9")
    assert clip.status_code == 200 and clip.data[4:8] == b"ftyp" and not part.exists()

    # A part file is a leftover only when no one holds its key's lock (a maker in another process may).
    other = jobs.cache.folder / "99-0123456789ab-proxy.mp4.part"
    other.write_bytes(b"x")
    lock = jobs.cache._lock("99-0123456789ab-proxy")
    with lock:
        jobs.cache.prune()
        assert other.exists()
    jobs.cache.prune()
    assert not other.exists()


def test_prune_drops_renders_of_removed_sources_and_the_old_folders(tmp_path):
    cache = Cache(tmp_path)
    cache.folder.mkdir()
    names = ["1-aaaa-proxy.mp4", "2-bbbb-clip-0-1000.mp4", "1-cccc-clip-0-500.mp4", "notes.txt"]
    for name in names:
        (cache.folder / name).write_bytes(b"x")
    for old in ("clips", "proxies"):  # vidsearch 0.1's caches
        (tmp_path / old).mkdir()
        (tmp_path / old / "1-aaaa.mp4").write_bytes(b"x")
    cache.prune({1})
    assert sorted(p.name for p in cache.folder.iterdir()) == sorted([names[0], names[2], names[3]])
    assert not (tmp_path / "clips").exists() and not (tmp_path / "proxies").exists()


# The player in a real browser.
@pytest.fixture
def page():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with chromium() as browser, checked_page(browser, accept_downloads=True) as page:
        yield page


def test_the_player_shows_the_jobs_progress_and_fetches_the_results(page, index, jobs, held, tmp_path):
    video, avi = sid(index, "shapes.mp4"), sid(index, "b.avi")
    with serving(create_app(index)) as url:
        page.goto(f"{url}/watch/{video}?t=9")
        with page.expect_download() as download:
            page.click("#clip-download")
            page.wait_for_function("() => document.getElementById('clip-info').textContent.endsWith('… 33%')")
            held.release()
        assert download.value.suggested_filename == "shapes_0m9s-0m12s.mp4"
        download.value.save_as(tmp_path / "clip.mp4")
        assert (tmp_path / "clip.mp4").read_bytes()[4:8] == b"ftyp"
        assert page.inner_text("#clip-info") == "The clip is ready; downloading it."

        held.hold()
        page.goto(f"{url}/watch/{avi}?t=1")
        held.wait_started()
        page.wait_for_function("() => document.getElementById('progress').textContent === '50%'")
        held.release()
        page.wait_for_function("() => document.querySelector('video').currentSrc.includes('/play/')")
        assert page.locator("#notice").count() == 0
