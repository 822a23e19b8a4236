"""Offline is not gone, moves are not new files: a folder that is emptied (a drive not mounted), unreadable or
missing keeps its sources, marked offline, and they come back with nothing embedded; a renamed folder or a moved
library is taken over by fingerprint, not embedded again; `index --prune` removes and names; the watcher keeps too.

Tests run as root, where chmod 000 does not stop reads: an unreadable folder is simulated by making os.scandir (which
os.walk and the plan both list folders with) raise PermissionError for it."""
from __future__ import annotations

import os
import shutil
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from media import draw, segments_video
from PIL import Image

from vidsearch.catalog import CATALOG, SCHEMA_VERSION
from vidsearch.cli import main
from vidsearch.index import Index
from vidsearch.ingest.copies import BLOCK, fingerprint
from vidsearch.watch import Watcher
from vidsearch.web import create_app


@pytest.fixture
def library(tmp_path) -> Path:
    """lib/drive: two videos and a photo (the drive that goes offline), and lib/home/keep.mp4 that stays."""
    lib = tmp_path / "lib"
    segments_video(lib / "drive" / "red.mp4", [(2, "circle", "red")])
    segments_video(lib / "drive" / "blue.mp4", [(2, "square", "blue")])
    Image.fromarray(draw("triangle", "green")).save(lib / "drive" / "green.png")
    segments_video(lib / "home" / "keep.mp4", [(2, "circle", "yellow")])
    return lib


def index_of(tmp_path: Path, tiny_model: str, paths) -> Index:
    idx = Index(tmp_path / "index", model=tiny_model)
    report = idx.add(paths)
    assert len(report.added) == 4 and not report.skipped
    return idx


def reopened(idx: Index) -> Index:
    """The same index opened afresh: its model not loaded, so that a run that embeds anything must load it."""
    idx.close()
    return Index(idx.path)


def frames_of(idx: Index) -> dict[str, tuple[int, list[int], np.ndarray]]:
    """{file name: (source id, frame ids, vectors)}."""
    out = {}
    for s in idx.sources():
        ids, _, vecs = idx.frames(s.id)
        out[os.path.basename(s.path)] = (s.id, ids, vecs)
    return out


def assert_same_frames(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for name, (sid, ids, vecs) in before.items():
        assert (after[name][0], after[name][1]) == (sid, ids), name
        assert np.array_equal(after[name][2], vecs), name


def drive_paths(lib: Path) -> list[str]:
    return sorted(str(lib / "drive" / n) for n in ("blue.mp4", "green.png", "red.mp4"))


def assert_kept_offline(idx: Index, lib: Path, report) -> None:
    drive = drive_paths(lib)
    assert report.removed == [] and report.added == []
    assert sorted(p for kept in report.offline.values() for p in kept) == drive
    by_path = {s.path: s for s in idx.sources()}
    assert sorted(by_path) == sorted([*drive, str(lib / "home" / "keep.mp4")])
    assert [p for p, s in sorted(by_path.items()) if s.offline] == drive
    hits = idx.search("a red circle", k=10, min_score=-1, per_video=0)
    assert {h.source: h.offline for h in hits} == {p: p in drive for p in by_path}


def unmount(lib: Path, stash: Path) -> None:
    """The drive's files go away; its folder (the mount point) stays, empty."""
    stash.mkdir()
    for f in (lib / "drive").iterdir():
        os.rename(f, stash / f.name)  # a rename keeps the mtime: the files come back unchanged


def mount(lib: Path, stash: Path) -> None:
    for f in stash.iterdir():
        os.rename(f, lib / "drive" / f.name)


def test_an_emptied_folder_keeps_its_sources_offline_and_they_come_back_with_nothing_embedded(tmp_path, library,
                                                                                               tiny_model):
    idx = index_of(tmp_path, tiny_model, [library])
    before = frames_of(idx)
    unmount(library, tmp_path / "stash")
    report = idx.add([library])
    assert_kept_offline(idx, library, report)
    assert report.offline == {str(library): drive_paths(library)}
    assert idx.counts()["frames"] == sum(len(ids) for _, ids, _ in before.values())

    mount(library, tmp_path / "stash")
    idx = reopened(idx)
    back = idx.add([library])
    assert (back.added, back.frames_embedded, back.removed, back.offline) == ([], 0, [], {})
    assert sorted(back.back) == drive_paths(library) and back.unchanged == 4
    assert idx._embedder is None  # the model was never needed
    assert not any(s.offline for s in idx.sources())
    assert_same_frames(before, frames_of(idx))
    idx.close()


def test_offline_results_in_the_json_api_the_page_the_cli_and_the_media_routes(tmp_path, library, tiny_model):
    idx = index_of(tmp_path, tiny_model, [library])
    unmount(library, tmp_path / "stash")
    res = CliRunner().invoke(main, ["index", str(library), "--index", str(idx.path)])
    assert res.exit_code == 0, res.output
    assert f"3 sources under {library} are offline; kept" in res.output and f"removed {library}" not in res.output
    assert "0 sources indexed" in res.output and "0 removed" in res.output
    client = create_app(idx).test_client()
    hits = client.get("/api/search", query_string={"q": "a red circle", "min_score": -1, "k": 10,
                                                   "per_video": 0}).get_json()["hits"]
    offline = {h["source"]: h.get("offline", False) for h in hits}
    assert offline == {"red.mp4": True, "blue.mp4": True, "green.png": True, "keep.mp4": False}
    page = client.get("/", query_string={"q": "a red circle", "min_score": -1}).get_data(as_text=True)
    assert page.count('class="offline-tag"') == 3
    red = next(s for s in idx.sources() if s.path.endswith("red.mp4"))
    green = next(s for s in idx.sources() if s.path.endswith("green.png"))
    for url in (f"/media/{red.id}", f"/play/{red.id}", f"/image/{green.id}", f"/clip/{red.id}?start=0&end=1"):
        res = client.get(url)
        assert res.status_code == 404, url
        assert "is offline" in res.get_data(as_text=True), url
    keep = next(s for s in idx.sources() if s.path.endswith("keep.mp4"))
    assert client.get(f"/media/{keep.id}").status_code == 200
    res = CliRunner().invoke(main, ["search", "a red circle", "--index", str(idx.path), "--min-score", "-1"])
    lines = [line for line in res.output.splitlines() if "drive" in line]
    assert lines and all(line.endswith("[offline]") for line in lines), res.output
    idx.close()


def test_an_unreadable_folder_keeps_its_sources(tmp_path, library, tiny_model, monkeypatch):
    idx = index_of(tmp_path, tiny_model, [library])
    drive = str(library / "drive")
    real_scandir = os.scandir

    def scandir(path="."):
        if path == drive:  # also called with file descriptors (shutil, tempfile)
            raise PermissionError(13, "Permission denied", drive)
        return real_scandir(path)
    monkeypatch.setattr(os, "scandir", scandir)
    report = idx.add([library])
    assert_kept_offline(idx, library, report)
    assert (drive, "Permission denied") in report.skipped
    monkeypatch.undo()
    idx = reopened(idx)
    back = idx.add([library])
    assert (back.added, back.frames_embedded, len(back.back)) == ([], 0, 3) and idx._embedder is None
    idx.close()


def test_a_missing_path_keeps_its_sources(tmp_path, library, tiny_model):
    drive = library / "drive"
    idx = index_of(tmp_path, tiny_model, [drive, library / "home"])
    before = frames_of(idx)
    shutil.move(drive, tmp_path / "away")  # the given PATH itself is gone: no folder at all
    report = idx.add([drive])
    assert_kept_offline(idx, library, report)
    assert report.offline == {str(drive): drive_paths(library)}
    res = CliRunner().invoke(main, ["index", str(drive), "--index", str(idx.path)])
    assert res.exit_code == 0, res.output
    assert f"3 sources under {drive} are offline; kept" in res.output
    # A missing path the index holds nothing under is a typo: one sentence, exit 2, nothing done.
    res = CliRunner().invoke(main, ["index", str(tmp_path / "nowhere"), "--index", str(idx.path)])
    assert res.exit_code == 2 and "does not exist" in res.output
    shutil.move(tmp_path / "away", drive)
    idx = reopened(idx)
    back = idx.add([drive])
    assert (back.added, back.frames_embedded, len(back.back)) == ([], 0, 3) and idx._embedder is None
    assert_same_frames(before, frames_of(idx))
    idx.close()


def test_a_renamed_folder_is_not_embedded_again(tmp_path, library, tiny_model):
    idx = index_of(tmp_path, tiny_model, [library])
    before = frames_of(idx)
    os.rename(library / "drive", library / "renamed")
    idx = reopened(idx)
    report = idx.add([library])
    assert (report.added, report.removed, report.frames_embedded, report.offline) == ([], [], 0, {})
    assert sorted(report.moved) == sorted((p, p.replace("/drive/", "/renamed/")) for p in drive_paths(library))
    assert idx._embedder is None
    assert_same_frames(before, frames_of(idx))
    assert sorted(s.path for s in idx.sources() if "/renamed/" in s.path) == [
        p.replace("/drive/", "/renamed/") for p in drive_paths(library)]
    hits = idx.search("a red circle", k=1)
    assert hits[0].source == str(library / "renamed" / "red.mp4") and not hits[0].offline
    idx.close()


def test_a_moved_library_indexed_at_its_new_path_is_not_embedded_again(tmp_path, library, tiny_model):
    idx = index_of(tmp_path, tiny_model, [library])
    before = frames_of(idx)
    idx.close()
    moved = tmp_path / "elsewhere" / "library"
    moved.parent.mkdir()
    shutil.move(library, moved)  # shutil.move keeps mtimes when it has to copy
    res = CliRunner().invoke(main, ["index", str(moved), "--index", str(tmp_path / "index")])
    assert res.exit_code == 0, res.output
    assert "0 sources indexed (0 frames, 0 embedded), 4 moved (not embedded again)" in res.output
    assert f"moved {library / 'home' / 'keep.mp4'} -> {moved / 'home' / 'keep.mp4'}" in res.output
    idx = Index(tmp_path / "index")
    assert_same_frames(before, frames_of(idx))
    assert all(s.path.startswith(str(moved)) and not s.offline for s in idx.sources())
    idx.close()


def test_prune_removes_offline_sources_and_names_them(tmp_path, library, tiny_model):
    idx = index_of(tmp_path, tiny_model, [library])
    idx.close()
    unmount(library, tmp_path / "stash")
    res = CliRunner().invoke(main, ["index", str(library), "--prune", "--index", str(tmp_path / "index")])
    assert res.exit_code == 0, res.output
    for path in drive_paths(library):
        assert f"removed {path} (offline or gone: --prune)" in res.output
    assert "3 removed" in res.output and "offline; kept" not in res.output
    idx = Index(tmp_path / "index")
    assert [s.path for s in idx.sources()] == [str(library / "home" / "keep.mp4")]
    idx.close()


def test_the_watcher_keeps_the_sources_of_a_folder_that_disappears(tmp_path, library, tiny_model):
    idx = index_of(tmp_path, tiny_model, [library])
    logged: list[str] = []
    with Watcher(idx, [library], debounce=0.0, log=logged.append) as w:
        w.start(catch_up=False)
        shutil.rmtree(library / "drive")
        w.changed(settled=True)
        wait_until_runs(w, 1)
        status = w.status()
        assert status["error"] is None and status["last_run"]["removed"] == 0
        assert status["last_run"]["offline"] == 3
    assert [s.path for s in idx.sources() if s.offline] == drive_paths(library)
    assert any("3 under" in line and "offline (kept)" in line for line in logged), logged
    idx.close()


def test_the_watcher_takes_a_watched_folder_back_when_it_returns(tmp_path, library, tiny_model):
    """The watch on a folder that goes ends with it, and its return raises no event: the watcher looks again."""
    drive = library / "drive"
    idx = index_of(tmp_path, tiny_model, [drive, library / "home"])
    with Watcher(idx, [drive], debounce=0.0, recheck=0.05) as w:
        w.start(catch_up=False)
        shutil.move(drive, tmp_path / "away")
        w.changed(settled=True)
        wait_until_runs(w, 1)
        assert w.status()["last_run"]["offline"] == 3
        shutil.move(tmp_path / "away", drive)
        wait_until_runs(w, 2)
        last = w.status()["last_run"]
        assert (last["back"], last["added"], last["frames_embedded"], last["removed"]) == (3, 0, 0, 0)
        new = segments_video(tmp_path / "new.mp4", [(1, "square", "orange")])
        os.rename(new, drive / "new.mp4")  # watched again: its event comes
        wait_until(lambda: str(drive / "new.mp4") in {s.path for s in idx.sources()})
    assert not any(s.offline for s in idx.sources())
    idx.close()


def wait_until_runs(w: Watcher, n: int) -> None:
    wait_until(lambda: w.status()["runs"] >= n)


def wait_until(condition) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, "the watcher did not get there within 60 s"
        time.sleep(0.05)  # polling interval only


def test_an_old_index_gets_fingerprints_on_its_next_run_and_then_knows_moves(tmp_path, library, tiny_model):
    idx = index_of(tmp_path, tiny_model, [library])
    before = frames_of(idx)
    idx.close()
    with sqlite3.connect(tmp_path / "index" / CATALOG) as db:  # as format 5 left it
        db.executescript("ALTER TABLE sources DROP COLUMN fingerprint; ALTER TABLE sources DROP COLUMN offline_since;"
                         "UPDATE meta SET value='5' WHERE key='format_version';")
    idx = Index(tmp_path / "index")
    assert idx._opened.catalog.read_meta()["format_version"] == SCHEMA_VERSION == 8
    assert all(s.fingerprint is None and not s.offline for s in idx.sources())
    again = idx.add([library])
    assert (again.added, again.unchanged) == ([], 4)
    assert all(s.fingerprint == fingerprint(s.path) for s in idx.sources())
    os.rename(library / "drive", library / "renamed")
    idx = reopened(idx)
    assert len(idx.add([library]).moved) == 3 and idx._embedder is None
    assert_same_frames(before, frames_of(idx))
    idx.close()


def test_a_fingerprint_reads_three_blocks_not_the_whole_file(tmp_path):
    data = bytearray(os.urandom(16 * BLOCK))
    f = tmp_path / "big.bin"
    f.write_bytes(data)
    first = fingerprint(str(f))
    data[3 * BLOCK] ^= 0xFF  # between the first and the middle block: not read
    f.write_bytes(data)
    assert fingerprint(str(f)) == first
    for at in (10, 8 * BLOCK, len(data) - 10):  # in the first, the middle and the last block
        changed = bytearray(data)
        changed[at] ^= 0xFF
        f.write_bytes(changed)
        assert fingerprint(str(f)) != first, at
    f.write_bytes(data + b"x")  # another size
    assert fingerprint(str(f)) != first
    assert fingerprint(str(tmp_path / "missing")) is None


def test_on_ray_moves_and_offline_sources_need_no_worker(tmp_path, library, tiny_model, monkeypatch):
    ray = pytest.importorskip("ray")
    from vidsearch.ingest import ray as ingest_ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        idx = Index(tmp_path / "index", model=tiny_model)
        assert len(idx.add([library], ray=True, ray_workers=1).added) == 4
    finally:
        ray.shutdown()
    before = frames_of(idx)
    os.rename(library / "drive", library / "renamed")
    (tmp_path / "stash").mkdir()
    os.rename(library / "home" / "keep.mp4", tmp_path / "stash" / "keep.mp4")  # home: an empty mount point

    def no_workers(self):
        raise AssertionError("nothing to embed: no Ray worker should start")
    monkeypatch.setattr(ingest_ray.Workers, "start", no_workers)
    report = idx.add([library], ray=True)
    assert (len(report.moved), report.frames_embedded, report.removed) == (3, 0, [])
    assert report.offline == {str(library): [str(library / "home" / "keep.mp4")]}
    assert_same_frames(before, frames_of(idx))
    idx.close()


def test_a_changed_file_whose_drive_goes_during_the_run_keeps_its_frames(tmp_path, library, tiny_model, monkeypatch):
    from vidsearch.ingest import local

    idx = index_of(tmp_path, tiny_model, [library])
    before = frames_of(idx)
    red = library / "drive" / "red.mp4"
    os.utime(red, (red.stat().st_atime, red.stat().st_mtime + 60))  # changed: to be indexed again
    real_open = local.open_media

    def open_media(path):  # the drive goes as the file is opened
        if path == str(red):
            unmount(library, tmp_path / "stash")
        return real_open(path)
    monkeypatch.setattr(local, "open_media", open_media)
    report = idx.add([library])
    assert report.skipped and report.skipped[0][0] == str(red) and report.removed == []
    assert frames_of(idx)["red.mp4"][1] == before["red.mp4"][1] and idx.stats().skipped == 0
    monkeypatch.undo()
    again = idx.add([library])
    assert sorted(p for kept in again.offline.values() for p in kept) == drive_paths(library)
    idx.close()


def test_an_unreadable_given_path_keeps_what_is_in_its_readable_subfolders(tmp_path, library, tiny_model,
                                                                           monkeypatch):
    """The walk cannot enter lib, though lib/drive itself could be listed: nothing under lib was looked for."""
    idx = index_of(tmp_path, tiny_model, [library])
    real_scandir = os.scandir

    def scandir(path="."):
        if path == str(library):
            raise PermissionError(13, "Permission denied", str(library))
        return real_scandir(path)
    monkeypatch.setattr(os, "scandir", scandir)
    report = idx.add([library])
    assert report.removed == [] and sum(len(kept) for kept in report.offline.values()) == 4
    assert all(s.offline for s in idx.sources())
    idx.close()


def test_a_file_that_is_there_but_not_walked_is_not_removed(tmp_path, library, tiny_model):
    hidden = segments_video(library / ".private" / "mine.mp4", [(1, "circle", "purple")])
    idx = Index(tmp_path / "index", model=tiny_model)
    assert idx.add([library / ".private"]).added == [str(hidden)]  # named, so walked
    report = idx.add([library])  # hidden folders are skipped by the walk
    assert report.removed == [] and str(hidden) in {s.path for s in idx.sources()}
    idx.close()
