"""Hardening: indexing while the server serves, disk-full errors, and files that hang or vanish while decoding."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from media import segments_video

import vidsearch
from vidsearch import catalog, errors, vectors
from vidsearch.cli import main
from vidsearch.errors import StoreError
from vidsearch.ingest import local
from vidsearch.ingest import plan as planning

COLOURS = ["red", "green", "blue", "yellow", "orange", "purple"]


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture()
def server(tmp_path, tiny_model):
    """`vidsearch serve` as users run it, over an index of two videos; yields (base URL, index folder)."""
    first = tmp_path / "first"
    for i, colour in enumerate(["red", "green"]):
        segments_video(first / f"old{i}.mp4", [(2, "circle", colour)])
    index_dir = tmp_path / "index"
    with vidsearch.Index(index_dir, model=tiny_model) as idx:
        assert idx.add([first]).frames_added == 4
    proc = subprocess.Popen([sys.executable, "-m", "vidsearch.cli", "serve", "--index", str(index_dir),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base = None
    for line in proc.stdout:  # ends when the server exits, so a failed start cannot hang the test
        if line.startswith("Open http://"):
            base = line.split()[1].rstrip("/")
            break
    assert base, proc.stderr.read()
    yield base, index_dir
    proc.terminate()
    proc.wait(timeout=30)


def test_indexing_while_serving(server, tmp_path, tiny_model):
    base, index_dir = server
    new = tmp_path / "new"
    for i in range(6):
        segments_video(new / f"new{i}.mp4", [(3, "triangle", COLOURS[i % len(COLOURS)])])
    writer = subprocess.Popen([sys.executable, "-m", "vidsearch.cli", "index", str(new), "--index",
                               str(index_dir), "--batch-size", "2"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    problems: list[str] = []
    seen: set[int] = set()  # source counts the server reported during the run
    requests = 0

    def check_once() -> None:
        nonlocal requests
        status, body = _get(f"{base}/api/info")
        requests += 1
        if status != 200:
            problems.append(f"/api/info: {status} {body[:200]!r}")
            return
        info = json.loads(body)
        seen.add(info["sources"])
        # Every source is whole: 2 old videos of 2 frames, each new one 3 frames.
        if info["frames"] != 4 + 3 * (info["sources"] - 2):
            problems.append(f"half-written source: {info['sources']} sources, {info['frames']} frames")
        status, body = _get(f"{base}/api/search?q=a+triangle&k=200&per_video=0&min_score=-1")
        requests += 1
        if status != 200:
            problems.append(f"/api/search: {status} {body[:200]!r}")
            return
        for hit in json.loads(body)["hits"]:
            status, _ = _get(base + hit["thumbnail_url"])
            requests += 1
            if status != 200:
                problems.append(f"{hit['thumbnail_url']} of {hit['source']}: {status}")

    def client() -> None:
        while writer.poll() is None:
            check_once()

    clients = [threading.Thread(target=client) for _ in range(2)]
    for c in clients:
        c.start()
    out, err = writer.communicate(timeout=120)
    for c in clients:
        c.join(timeout=60)
    assert writer.returncode == 0, err
    assert "6 sources indexed (18 frames, " in out
    assert not problems, problems[:5]
    assert requests > 10
    # After the run, without a restart: the new sources are served.
    check_once()
    assert not problems, problems
    info = json.loads(_get(f"{base}/api/info")[1])
    assert (info["sources"], info["frames"]) == (8, 22)
    hits = json.loads(_get(f"{base}/api/search?q=a+purple+triangle&k=1")[1])["hits"]
    assert hits[0]["source"] == "new5.mp4" and not hits[0]["weak"]
    print(f"{requests} requests during the run; source counts seen: {sorted(seen)}")


# -- disk full ------------------------------------------------------------------------------------------------

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture()
def indexed(tmp_path, tiny_model):
    """An index of one red video, and a folder of two more videos it has not seen; returns (index dir, folder)."""
    segments_video(tmp_path / "old" / "red.mp4", [(2, "circle", "red")])
    with vidsearch.Index(tmp_path / "index", model=tiny_model) as idx:
        idx.add([tmp_path / "old"])
    segments_video(tmp_path / "new" / "blue.mp4", [(2, "square", "blue")])
    segments_video(tmp_path / "new" / "green.mp4", [(2, "triangle", "green")])
    return tmp_path / "index", tmp_path / "new"


def assert_whole(index_dir: Path, old: Path) -> list[str]:
    """The index opens and finds the red video; every source has all its frames and thumbnails, and nothing is
    left staged or half-saved. Returns the sources' paths."""
    with vidsearch.Index(index_dir) as idx:
        hits = idx.search("a red circle", k=1)
        assert [(h.source, h.start, h.end) for h in hits] == [(str(old), 0, 2)]
        ids = []
        for s in idx.sources():
            ids += idx.frames(s.id)[0]
            assert len(idx.frames(s.id)[0]) == s.frames == round(s.duration)
        assert sorted(int(p.stem) for p in (index_dir / "thumbs").glob("*/*.jpg")) == sorted(ids)
        paths = [s.path for s in idx.sources()]
    assert not list((index_dir / "thumbs" / "staging").iterdir())
    assert not (index_dir / "vectors.faiss.tmp").exists()
    return paths


def assert_as_before(index_dir: Path, old: Path) -> None:
    assert assert_whole(index_dir, old) == [str(old)]


def test_disk_full_writing_a_thumbnail_python_api(indexed, tmp_path, monkeypatch):
    index_dir, new = indexed

    def full(self, data):
        raise ENOSPC
    monkeypatch.setattr(Path, "write_bytes", full)
    idx = vidsearch.Index(index_dir)
    with pytest.raises(StoreError, match=r"could not be written \(the disk is full\)"):
        idx.add([new])
    idx.close()
    monkeypatch.undo()
    assert_as_before(index_dir, tmp_path / "old" / "red.mp4")
    with vidsearch.Index(index_dir) as idx:  # once there is space, the same run carries on
        assert idx.add([new]).frames_added == 4


def test_disk_full_cli_one_sentence_exit_1(indexed, tmp_path, monkeypatch):
    index_dir, new = indexed
    writes = []

    def full_after_two(self, data):  # cv2.imwrite would have returned False here
        if len(writes) == 2:
            raise ENOSPC
        writes.append(self)
        return real_write(self, data)
    real_write = Path.write_bytes
    monkeypatch.setattr(Path, "write_bytes", full_after_two)
    # A batch of one: the progress bar is up when the disk fills, and the error must not land in its line.
    res = CliRunner().invoke(main, ["index", str(new), "--index", str(index_dir), "--batch-size", "1"],
                             catch_exceptions=False)
    assert res.exit_code == 1
    lines = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert lines == [(f"Error: The index at {index_dir} could not be written (the disk is full); it keeps every "
                      "source indexed before, and running the same command again once that is fixed carries on "
                      "from there.")], res.output
    assert "Traceback" not in res.output and "file/s" in res.output
    monkeypatch.undo()
    # Whole sources only. Two thumbnails were written: whether they were one new video's two (which then committed)
    # or one of each depends on how the two decode threads interleave.
    assert len(assert_whole(index_dir, tmp_path / "old" / "red.mp4")) <= 2


class _FullAtCommit:
    """The catalog connection as SQLite behaves when the disk fills while a write transaction commits."""

    def __init__(self, db):
        self._db, self._writing = db, False

    def execute(self, sql, *args):
        if sql == "BEGIN IMMEDIATE":
            self._writing = True
        elif sql == "COMMIT" and self._writing:
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._db, name)


def test_disk_full_at_the_catalog_commit(indexed, tmp_path, monkeypatch):
    index_dir, new = indexed
    connect = sqlite3.connect
    monkeypatch.setattr(catalog.sqlite3, "connect", lambda *a, **kw: _FullAtCommit(connect(*a, **kw)))
    idx = vidsearch.Index(index_dir)
    with pytest.raises(StoreError, match=r"the disk is full"):
        idx.add([new])
    idx.close()
    assert_as_before(index_dir, tmp_path / "old" / "red.mp4")


def test_catalog_full_for_real(indexed, tmp_path, monkeypatch):
    # SQLite's own SQLITE_FULL, from a page limit at the catalog's current size: the INSERTs fail, not a mock.
    index_dir, new = indexed
    segments_video(new / "long.mp4", [(30, "square", "yellow")])  # vectors that need new pages
    with contextlib.closing(sqlite3.connect(index_dir / "catalog.sqlite")) as db:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
    connect = sqlite3.connect

    def limited(*args, **kwargs):
        db = connect(*args, **kwargs)
        db.execute(f"PRAGMA max_page_count = {pages}")
        return db
    monkeypatch.setattr(catalog.sqlite3, "connect", limited)
    idx = vidsearch.Index(index_dir)
    with pytest.raises(StoreError, match=r"the disk is full"):
        idx.add([new])
    idx.close()
    # The short videos may have been committed before the disk filled; the long one cannot have been.
    assert str(new / "long.mp4") not in assert_whole(index_dir, tmp_path / "old" / "red.mp4")


def test_disk_full_saving_faiss(indexed, tmp_path, monkeypatch):
    index_dir, new = indexed
    before = (index_dir / "vectors.faiss").read_bytes()

    def full(index, path):  # what FAISS does: part of the file written, then a RuntimeError
        Path(path).write_bytes(b"\0" * 100)
        raise RuntimeError(f"Error in faiss::FileIOWriter: 'ret == (n)' failed: write error in {path}: "
                           "10 != 100 (No space left on device)")
    monkeypatch.setattr(vectors.faiss, "write_index", full)
    idx = vidsearch.Index(index_dir)
    with pytest.raises(StoreError, match=r"the disk is full"):
        idx.add([new])
    idx.close()
    monkeypatch.undo()
    assert (index_dir / "vectors.faiss").read_bytes() == before
    assert not (index_dir / "vectors.faiss.tmp").exists()
    with vidsearch.Index(index_dir) as idx:  # the sources were committed: the catalog brings FAISS up to date
        assert len(idx.sources()) == 3
        assert idx.search("a green triangle", k=1)[0].source == str(new / "green.mp4")


def test_a_cut_short_faiss_file_is_rebuilt_from_the_catalog(indexed, tmp_path):
    index_dir, _ = indexed
    faiss_file = index_dir / "vectors.faiss"
    faiss_file.write_bytes(faiss_file.read_bytes()[:-10])
    with vidsearch.Index(index_dir) as idx:
        assert idx.search("a red circle", k=1)[0].source == str(tmp_path / "old" / "red.mp4")


def test_size_on_disk_ignores_files_that_vanish_while_counted(indexed, monkeypatch):
    index_dir, _ = indexed
    with vidsearch.Index(index_dir) as idx:
        size = idx.stats().size_bytes
        real_walk = os.walk

        def walk(top):  # a thumbnail listed, then renamed away by a writer before it is counted
            for folder, dirs, files in real_walk(top):
                yield folder, dirs, files + ["gone.jpg"]
        monkeypatch.setattr(os, "walk", walk)
        assert idx.stats().size_bytes == size


# -- files that hang or vanish while decoding -----------------------------------------------------------------

STALLED = "decoding stalled for 0.5 s (no frame came)"


class _Media:
    """A real media file whose decoding calls `hook` once its first frame is out (to hang, delete or touch it)."""

    def __init__(self, media, hook):
        self._media, self._hook = media, hook

    @property
    def info(self):
        return self._media.info

    def frames(self, interval, side):
        for n, frame in enumerate(self._media.frames(interval, side)):
            if n == 1:
                self._hook()
            yield frame

    def close(self):
        self._media.close()


def within(seconds: float, fn):
    """fn() in a daemon thread; fails the test (rather than hanging it) if fn has not returned in time."""
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("value", fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s"
    return result["value"]


def decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "vidsearch-decode"]


def wait_until(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)  # polling interval only


def test_files_whose_decoding_hangs_are_skipped_and_the_rest_indexed(tmp_path, tiny_model, monkeypatch):
    lib = tmp_path / "lib"
    for name, colour in [("hangs_opening", "red"), ("hangs_after_a_frame", "green"), ("fine1", "blue"),
                         ("fine2", "yellow")]:
        segments_video(lib / f"{name}.mp4", [(3, "circle", colour)])
    release = threading.Event()
    real_open = local.open_media

    def open_media(path):
        if os.path.basename(path) == "hangs_opening.mp4":
            release.wait()
        media = real_open(path)
        return _Media(media, release.wait) if os.path.basename(path) == "hangs_after_a_frame.mp4" else media
    monkeypatch.setattr(local, "open_media", open_media)
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model, decode_timeout=0.5)
    try:
        # Both decode threads hang (two workers): the run goes on with fresh ones.
        report = within(60, lambda: idx.add([lib]))
        stuck = decode_threads()
        assert len(stuck) == 2 and all(t.daemon for t in stuck)  # left behind, and no obstacle to exiting
    finally:
        release.set()
    assert sorted(report.skipped) == [(str(lib / "hangs_after_a_frame.mp4"), STALLED),
                                      (str(lib / "hangs_opening.mp4"), STALLED)]
    assert sorted(report.added) == [str(lib / "fine1.mp4"), str(lib / "fine2.mp4")] and report.frames_added == 6
    assert idx.search("a blue circle", k=1)[0].source == str(lib / "fine1.mp4")
    assert [r.reason for r in idx.skipped()] == [STALLED, STALLED]
    # Released, the abandoned threads end without adding anything, and remove what they staged.
    wait_until(lambda: not decode_threads())
    assert not list((idx.path / "thumbs" / "staging").iterdir())
    assert [s.path for s in idx.sources()] == [str(lib / "fine1.mp4"), str(lib / "fine2.mp4")]
    idx.close()


def test_decode_timeout_option(tmp_path, tiny_model, monkeypatch):
    lib = tmp_path / "lib"
    segments_video(lib / "hangs.mp4", [(2, "circle", "red")])
    segments_video(lib / "fine.mp4", [(2, "square", "blue")])
    release = threading.Event()
    real_open = local.open_media
    monkeypatch.setattr(local, "open_media", lambda p: _Media(real_open(p), release.wait)
                        if os.path.basename(p) == "hangs.mp4" else real_open(p))
    try:
        res = within(60, lambda: CliRunner().invoke(
            main, ["index", str(lib), "--index", str(tmp_path / "index"), "--model", tiny_model,
                   "--decode-timeout", "0.5"], catch_exceptions=False))
    finally:
        release.set()
    assert res.exit_code == 0, res.output
    assert f"skipped {lib / 'hangs.mp4'}: {STALLED}" in res.output
    assert "1 sources indexed (2 frames, " in res.output and "), 0 unchanged, 1 skipped" in res.output
    assert "--decode-timeout SECONDS" in CliRunner().invoke(main, ["index", "--help"]).output
    assert CliRunner().invoke(main, ["index", str(lib), "--decode-timeout", "0"]).exit_code == 2


def test_files_deleted_or_changed_during_a_run_are_skipped_with_a_reason(tmp_path, tiny_model, monkeypatch):
    lib = tmp_path / "lib"
    for name, colour in [("deleted_before", "red"), ("deleted_during", "green"), ("changed", "blue"),
                         ("fine", "yellow")]:
        segments_video(lib / f"{name}.mp4", [(3, "circle", colour)])
    real_plan, real_open = planning.plan, local.open_media

    def plan(store, paths):  # deleted after it was found, before it is decoded
        planned = real_plan(store, paths)
        (lib / "deleted_before.mp4").unlink()
        return planned

    def open_media(path):
        media = real_open(path)
        if os.path.basename(path) == "deleted_during.mp4":
            return _Media(media, lambda: os.unlink(path))  # still open: the decoder reads it to the end
        if os.path.basename(path) == "changed.mp4":
            return _Media(media, lambda: os.utime(path, (time.time() + 60, time.time() + 60)))
        return media
    monkeypatch.setattr(planning, "plan", plan)
    monkeypatch.setattr(local, "open_media", open_media)
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    report = idx.add([lib])
    deleted = "the file was deleted while it was being indexed"
    assert sorted(report.skipped) == [
        (str(lib / "changed.mp4"), "the file changed while it was being indexed (the next run takes it again)"),
        (str(lib / "deleted_before.mp4"), deleted), (str(lib / "deleted_during.mp4"), deleted)]
    assert report.added == [str(lib / "fine.mp4")]
    assert not list((idx.path / "thumbs" / "staging").iterdir())
    monkeypatch.undo()
    again = idx.add([lib])
    assert again.added == [str(lib / "changed.mp4")] and not again.skipped
    assert [s.path for s in idx.sources()] == [str(lib / "changed.mp4"), str(lib / "fine.mp4")]
    assert idx.stats().skipped == 0
    idx.close()


def test_opening_on_a_full_disk_is_one_sentence(indexed, monkeypatch):
    # The first connection to a closed catalog creates its shared-memory file, which SQLite cannot do on a full disk.
    index_dir, _ = indexed

    def refuse(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(catalog.sqlite3, "connect", refuse)
    monkeypatch.setattr(errors.shutil, "disk_usage", lambda path: SimpleNamespace(free=0))
    res = CliRunner().invoke(main, ["search", "a red circle", "--index", str(index_dir)], catch_exceptions=False)
    assert res.exit_code == 1
    assert res.output.startswith(f"Error: The index at {index_dir} could not be opened (the disk is full);")
    assert len(res.output.strip().splitlines()) == 1


def test_a_file_stuck_opening_blocks_later_opens_which_are_left_for_the_next_run(tmp_path, tiny_model, monkeypatch):
    # Opens that all block on something shared (modelled as a lock, like a dead network mount or a decoder
    # library's lock): one file stuck opening makes every later open hang too.
    lib = tmp_path / "lib"
    for name, colour in [("a_stuck", "red"), ("b_stuck", "green"), ("c_fine", "blue"), ("d_fine", "yellow")]:
        segments_video(lib / f"{name}.mp4", [(2, "circle", colour)])
    release = threading.Event()
    real_plan, real_open = planning.plan, local.open_media

    def plan(store, paths):  # the stuck files first, so that the fine ones come after the lock is taken
        todo, *rest = real_plan(store, paths)
        return sorted(todo, key=lambda c: c.path), *rest

    shared = threading.Lock()

    def open_media(path):
        with shared:
            if os.path.basename(path).endswith("_stuck.mp4"):
                release.wait()
            return real_open(path)
    monkeypatch.setattr(planning, "plan", plan)
    monkeypatch.setattr(local, "open_media", open_media)
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model, decode_timeout=0.5)
    try:
        report = within(60, lambda: idx.add([lib]))
    finally:
        release.set()
    reasons = dict(report.skipped)
    assert sorted(reasons) == [str(lib / n) for n in ["a_stuck.mp4", "b_stuck.mp4", "c_fine.mp4", "d_fine.mp4"]]
    assert not report.added
    (culprit,) = [p for p, r in reasons.items() if r == STALLED]
    assert culprit in (str(lib / "a_stuck.mp4"), str(lib / "b_stuck.mp4"))
    behind = {f"decoding stalled behind {culprit}, which is stuck; tried again next run",
              f"not tried: decoding is blocked behind {culprit}, which is stuck; tried again next run"}
    assert all(r in behind for p, r in reasons.items() if p != culprit), reasons
    # Only the stuck file is remembered as unreadable; the next run indexes the rest.
    assert [r.path for r in idx.skipped()] == [culprit]
    monkeypatch.undo()
    again = idx.add([lib])
    assert sorted(again.added) == sorted({str(p) for p in lib.iterdir()} - {culprit})
    assert again.skipped == [(culprit, STALLED)]
    wait_until(lambda: not decode_threads())
    idx.close()
