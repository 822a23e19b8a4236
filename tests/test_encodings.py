"""Another encoding of one video is told from its pixels once, when it is indexed (extract.pixels, catalog
`encodings`); two recordings of one fixed camera are not one video however alike their frames' vectors."""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
import pytest
from media import FFMPEG, encode

from vidsearch.catalog import CATALOG
from vidsearch.extract.pixels import COLS, ROWS, SAME_CELL, cell_differences
from vidsearch.index import Index

SIZE = (320, 180)
FPS = 5


def camera(path: Path, seconds: int, start: int) -> Path:
    """A fixed camera's view (a still scene) with someone walking through it from its second second on (the first
    frames of two recordings are the same: they are compared whole); `start`: where the walk is, in seconds of one
    long recording, so that two halves show the same scene with the walker elsewhere."""
    rng = np.random.default_rng(0)  # the same scene in every recording
    w, h = SIZE
    scene = np.repeat(np.linspace(90, 200, w, dtype=np.float32)[None, :, None], h, 0).repeat(3, 2)
    for _ in range(12):
        x, y = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 30))
        scene[y:y + 30, x:x + 40] = rng.integers(40, 230, 3)
    scene = scene.astype(np.uint8)
    frames = []
    for n in range(seconds * FPS):
        t = start + n / FPS
        frame = scene.copy()
        x = int((t * 23) % (w - 30))  # the walker crosses every 12 s or so
        if n >= FPS:
            frame[100:170, x:x + 30] = (30, 25, 60)
        frames.append(frame)
    return encode(path, frames, FPS, SIZE)


def reencode(src: Path, dst: Path, *args: str) -> Path:
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-i", str(src), *args, "-an", str(dst)], check=True)
    return dst


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("camera")
    first = camera(folder / "first.mp4", 10, 0)
    return {"first": first, "second": camera(folder / "second.mp4", 10, 10),
            "avi": reencode(first, folder / "first.avi", "-c:v", "mpeg4", "-q:v", "8"),
            "mpg": reencode(first, folder / "first.mpg", "-c:v", "mpeg2video", "-q:v", "6"),
            "small": reencode(first, folder / "first.small.mp4", "-vf", "scale=160:90", "-c:v", "libx264",
                              "-crf", "32", "-pix_fmt", "yuv420p")}


def ids(idx: Index) -> dict[str, int]:
    return {os.path.basename(s.path): s.id for s in idx.sources()}


def pairs(idx: Index) -> set[frozenset[str]]:
    names = {v: k for k, v in ids(idx).items()}
    found = idx._opened.catalog.encodings(list(names))
    return {frozenset((names[a], names[b])) for a, others in found.items() for b in others}


def test_reencodings_are_paired_and_two_recordings_of_one_camera_are_not(tmp_path, recordings, tiny_model):
    lib = tmp_path / "lib"
    lib.mkdir()
    for p in recordings.values():
        shutil.copy2(p, lib / p.name)
    idx = Index(tmp_path / "index", model=tiny_model)
    idx.add([lib])
    firsts = ["first.mp4", "first.avi", "first.mpg", "first.small.mp4"]
    assert pairs(idx) == {frozenset((a, b)) for a in firsts for b in firsts if a < b}
    assert idx._opened.catalog.encodings([ids(idx)["second.mp4"]]) == {}


def test_the_walker_is_what_tells_the_recordings_apart(recordings):
    from vidsearch.extract import open_media
    from vidsearch.extract.pixels import pixel_signature

    def sigs(path):
        media = open_media(str(path))
        try:
            return np.stack([np.frombuffer(pixel_signature(f.rgb), np.uint8) for f in media.frames(1.0, 128)])
        finally:
            media.close()

    first, second, avi = (sigs(recordings[k]) for k in ("first", "second", "avi"))
    assert first.shape == (10, COLS * ROWS)
    assert cell_differences(first, avi).max() <= SAME_CELL / 2  # codec noise: every cell a little
    # The walker: a few cells by far more, the rest of the scene as alike as the re-encode.
    apart = np.abs(first.astype(float) - first.mean(1, keepdims=True)
                   - (second.astype(float) - second.mean(1, keepdims=True)))
    assert cell_differences(first[:1], second[:1])[0] <= SAME_CELL / 2  # nobody in view yet
    assert (cell_differences(first[1:], second[1:]) > 2 * SAME_CELL).all()
    assert (np.median(apart, axis=1) <= SAME_CELL / 4).all()


def test_a_changed_video_loses_its_pairs_and_is_compared_again(tmp_path, recordings, tiny_model):
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy2(recordings["first"], lib / "a.mp4")
    shutil.copy2(recordings["avi"], lib / "b.avi")
    idx = Index(tmp_path / "index", model=tiny_model)
    idx.add([lib])
    assert pairs(idx) == {frozenset(("a.mp4", "b.avi"))}
    shutil.copy2(recordings["second"], lib / "b.avi")  # another recording now, under the same name
    os.utime(lib / "b.avi", (1, 1))
    idx.add([lib])
    assert pairs(idx) == set()
    shutil.copy2(recordings["mpg"], lib / "b.avi")
    idx.add([lib])
    assert pairs(idx) == {frozenset(("a.mp4", "b.avi"))}


def test_sources_indexed_before_format_7_are_paired_once_indexed_again(tmp_path, recordings, tiny_model):
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy2(recordings["first"], lib / "a.mp4")
    shutil.copy2(recordings["avi"], lib / "b.avi")
    Index(tmp_path / "index", model=tiny_model).add([lib])
    db = sqlite3.connect(tmp_path / "index" / CATALOG)
    db.executescript("DROP TABLE encodings; DROP TABLE frame_pixels;"
                     "UPDATE meta SET value='6' WHERE key='format_version';")
    db.close()
    idx = Index(tmp_path / "index")
    assert idx._opened.catalog.read_meta()["format_version"] == 8 and pairs(idx) == set()
    os.utime(lib / "b.avi", (2, 2))  # b changes: it is sampled again, but a has no signatures yet
    idx.add([lib])
    assert pairs(idx) == set()
    os.utime(lib / "a.mp4", (2, 2))
    idx.add([lib])
    assert pairs(idx) == {frozenset(("a.mp4", "b.avi"))}


def test_both_recordings_of_one_camera_are_found_and_a_reencode_is_merged(tmp_path, recordings, tiny_model):
    lib = tmp_path / "lib"
    lib.mkdir()
    for k in ("first", "second", "avi"):
        shutil.copy2(recordings[k], lib / recordings[k].name)
    idx = Index(tmp_path / "index", model=tiny_model)
    idx.add([lib])
    hits = idx.search("a dark figure", k=10, min_score=-1)
    shown = {os.path.basename(h.source) for h in hits}
    assert "second.mp4" in shown and len(shown & {"first.mp4", "first.avi"}) == 1
    merged = next(h for h in hits if os.path.basename(h.source) in ("first.mp4", "first.avi"))
    assert [os.path.basename(p) for p in merged.also] in (["first.avi"], ["first.mp4"])
