"""A moment as a clip: frame-accurate MP4s of a span of a video, through the Python API, the web app, the CLI and the
player in a browser. The test videos number their frames in black and white stripes, so that which frame a clip
starts with can be read back from its pixels."""
from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from browsers import CHROMIUM, checked_page, chromium, serving
from click.testing import CliRunner
from media import FFMPEG, draw, encode
from PIL import Image

from vidsearch.cli import main
from vidsearch.errors import ClipError
from vidsearch.index import Index
from vidsearch.web import create_app

FPS = 25
FRAMES = 300  # 12 s
BITS = 10
SIZE = (320, 180)


def coded(n: int) -> np.ndarray:
    """Frame n: its number in binary, one vertical stripe a bit (white is 1), least significant on the left."""
    w, h = SIZE
    img = np.zeros((h, w, 3), np.uint8)
    band = w // BITS
    for b in range(BITS):
        if n >> b & 1:
            img[:, b * band:(b + 1) * band] = 255
    return img


def number(rgb: np.ndarray) -> int:
    """The frame number that coded() drew (read from the middle of each stripe, so that compression cannot flip it)."""
    h, w, _ = rgb.shape
    band = w // BITS
    return sum(1 << b for b in range(BITS)
               if rgb[h // 4:3 * h // 4, b * band + band // 4:(b + 1) * band - band // 4].mean() > 128)


def coded_video(path: Path, extra: list[str] = ()) -> Path:
    """12 s of numbered frames at 25 fps with a 440 Hz tone, H.264 with B-frames and x264's default GOP (one
    keyframe at the start: every clip must decode from there)."""
    w, h = SIZE
    cmd = [FFMPEG, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(FPS),
           "-i", "-", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-shortest",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", *extra, str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for n in range(FRAMES):
        proc.stdin.write(coded(n).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0
    return path


def decode(path: Path) -> tuple[list[tuple[float, int]], dict]:
    """[(time after the video stream's first frame, frame number)] of every frame, and what the file holds."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        start = v.start_time or 0
        frames = [(float((f.pts - start) * v.time_base), number(f.to_ndarray(format="rgb24"))) for f in c.decode(v)]
        a = c.streams.audio[0] if c.streams.audio else None
        info = {"duration": c.duration / 1e6, "video": v.codec_context.name, "pix_fmt": v.codec_context.pix_fmt,
                "audio": a and a.codec_context.name,
                "audio_duration": a and a.duration and float(a.duration * a.time_base)}
    return frames, info


def shown_at(frames: list[tuple[float, int]], t: float) -> tuple[float, int]:
    """The frame on screen at t: the last one whose time is at or before it (times are kept in milliseconds)."""
    return max((f for f in frames if f[0] <= t + 0.0005), key=lambda f: f[0])


@pytest.fixture(scope="module")
def library(tmp_path_factory, shapes_video) -> Path:
    folder = tmp_path_factory.mktemp("clips") / "library"
    folder.mkdir()
    coded_video(folder / "coded.mp4")
    coded_video(folder / "coded.ts", ["-f", "mpegts"])  # seeks by bytes: lands anywhere, on no keyframe
    shutil.copy(shapes_video[0], folder / "shapes.mp4")
    # Two frames, at 0 and 700 s: a long video that costs nothing to index.
    encode(folder / "long.mp4", [draw("circle", "red"), draw("square", "blue")], pts=[0, 700])
    Image.fromarray(draw("triangle", "green")).save(folder / "green.png")
    return folder


@pytest.fixture(scope="module")
def index(tmp_path_factory, library, tiny_model):
    with Index(tmp_path_factory.mktemp("clips") / "index", model=tiny_model) as idx:
        assert not idx.add([library]).skipped
        yield idx


def source_id(index: Index, name: str) -> int:
    return next(s.id for s in index.sources() if os.path.basename(s.path) == name)


@pytest.fixture
def ffmpeg_runs(monkeypatch) -> list[list[str]]:
    """The ffmpeg commands that cut clips while the test runs."""
    runs: list[list[str]] = []
    real = subprocess.Popen

    def popen(cmd, *args, **kwargs):
        if FFMPEG in cmd and "-copyts" in cmd:
            runs.append(cmd)
        return real(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen)
    return runs


@pytest.mark.parametrize("name", ["coded.mp4", "coded.ts"])
@pytest.mark.parametrize("start, end", [(3.0, 5.0), (3.01, 5.0), (0.033, 1.0), (4.999, 9.5), (7.3, 11.9),
                                        (10.0, 12.0), (0.0, 2.0)])
def test_a_clip_starts_with_the_frame_shown_at_start_and_lasts_end_minus_start(index, library, name, start, end):
    source, _ = decode(library / name)
    frames, info = decode(index.clip(source_id(index, name), start, end))
    first_time, first = shown_at(source, start)
    assert frames[0] == (0.0, first), "not the frame shown at start, or not shown from the clip's start"
    # Every later frame too: the one the source shows at the same distance from the first (no frame frozen,
    # duplicated or dropped).
    expected = [(round(t - first_time, 3), n) for t, n in source if t >= first_time and t - first_time < end - start]
    assert [(round(t, 3), n) for t, n in frames] == expected
    assert abs(info["duration"] - (end - start)) <= 1 / FPS + 0.001
    assert abs(info["audio_duration"] - (end - start)) <= 0.03
    assert (info["video"], info["pix_fmt"], info["audio"]) == ("h264", "yuv420p", "aac")


def test_clips_are_fast_start_mp4s_in_the_index_folder(index):
    path = index.clip(source_id(index, "coded.mp4"), 1, 2)
    assert path.parent == index.path / "renders" and path.suffix == ".mp4"
    head = path.read_bytes()
    assert head[4:8] == b"ftyp" and head.index(b"moov") < head.index(b"mdat")  # +faststart: playable while loading
    assert not [p for p in path.parent.iterdir() if p.suffix in (".part", ".lock")]


def test_a_clip_is_made_once_then_served_from_the_cache(app, index, ffmpeg_runs):
    sid = source_id(index, "coded.mp4")
    client = app.test_client()
    queued = client.get(f"/clip/{sid}?start=2.5&end=4")  # made by a job: the request does not wait for it
    assert queued.status_code == 202 and queued.headers["Location"] == queued.json["status_url"]
    index.job(queued.json["id"]).result(60)
    first = client.get(f"/clip/{sid}?start=2.5&end=4")
    assert first.status_code == 200 and first.mimetype == "video/mp4"
    assert first.headers["Content-Disposition"] == "attachment; filename=coded_0m2.5s-0m4s.mp4"
    assert len(ffmpeg_runs) == 1
    again = client.get(f"/clip/{sid}?start=2.5&end=4.000")
    assert again.status_code == 200 and again.data == first.data
    assert len(ffmpeg_runs) == 1  # the second request did not run ffmpeg
    ranged = client.get(f"/clip/{sid}?start=2.5&end=4", headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.data == first.data[:100]
    assert client.get(f"/clip/{sid}?start=0:02.5&end=0:04").data == first.data  # m:ss too
    assert len(ffmpeg_runs) == 1


def test_concurrent_requests_for_one_clip_make_it_once(index, ffmpeg_runs):
    sid = source_id(index, "coded.mp4")
    results: list[Path] = []
    barrier = threading.Barrier(4)

    def ask() -> None:
        barrier.wait()
        results.append(index.clip(sid, 6.2, 8.4))

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1 and results[0].is_file()
    assert len(ffmpeg_runs) == 1


@pytest.fixture(scope="module")
def app(index):
    return create_app(index)


@pytest.mark.parametrize("query, message", [
    ("start=0&end=650", "A clip can be at most 600 s long; this one is 650 s."),
    ("start=10&end=10", "A clip must end after it starts."),
    ("start=5&end=2", "A clip must end after it starts."),
    ("start=0&end=800", "after the video's end"),
    ("start=-1&end=2", "not a time"),
    ("start=abc&end=2", "'abc' is not a time: give seconds (12.5) or m:ss (1:05)."),
    ("start=nan&end=2", "not a time"),
    ("start=0&end=inf", "not a time"),
    ("start=1:75&end=2:00", "not a time"),
    ("start=1", "Give the clip's start and end"),
])
def test_bad_or_too_long_spans_are_a_400_with_one_sentence(app, index, query, message):
    response = app.test_client().get(f"/clip/{source_id(index, 'long.mp4')}?{query}")
    assert response.status_code == 400
    assert message in html.unescape(response.get_data(as_text=True))


def test_the_limit_and_the_span_are_checked_in_python_too(index):
    sid = source_id(index, "coded.mp4")
    with pytest.raises(ClipError, match="at most 2 s"):
        index.clip(sid, 0, 3, limit=2)
    with pytest.raises(ClipError, match="after the video's end"):
        index.clip(sid, 11, 13)
    with pytest.raises(ClipError, match="no video"):
        index.clip(source_id(index, "green.png"), 0, 1)


def test_unknown_ids_and_photos_are_a_404(app, index):
    client = app.test_client()
    assert client.get("/clip/999999?start=0&end=1").status_code == 404
    assert client.get(f"/clip/{source_id(index, 'green.png')}?start=0&end=1").status_code == 404
    assert client.get("/clip/..%2Fetc?start=0&end=1").status_code == 404
    assert client.get("/clip/-1?start=0&end=1").status_code == 404


def test_the_watch_page_offers_the_moment_shown_as_a_clip(app, index):
    sid = source_id(index, "shapes.mp4")
    page = app.test_client().get(f"/watch/{sid}?t=3&q=a+blue+square").get_data(as_text=True)
    assert 'id="clip-start"' in page and 'value="3"' in page and 'value="6"' in page
    assert f'href="/clip/{sid}?start=3&amp;end=6"' in page
    no_query = app.test_client().get(f"/watch/{sid}?t=11").get_data(as_text=True)  # 10 s from t, up to the end
    assert f'href="/clip/{sid}?start=11&amp;end=12"' in no_query


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_the_cli_writes_a_clip_by_path_or_id(index, library, tmp_path):
    out = tmp_path / "out.mp4"
    result = cli("clip", library / "coded.mp4", "0:03.5", "5", "-o", out, "--index", index.path)
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    frames, info = decode(out)
    assert frames[0] == (0.0, shown_at(decode(library / "coded.mp4")[0], 3.5)[1])
    assert abs(info["duration"] - 1.5) <= 1 / FPS + 0.001
    by_id = tmp_path / "by_id.mp4"
    assert cli("clip", source_id(index, "coded.mp4"), 3.5, 5, "-o", by_id, "--index", index.path).exit_code == 0
    assert by_id.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("args, message", [
    (["coded.mp4", "5", "3"], "A clip must end after it starts."),
    (["coded.mp4", "0", "x"], "'x' is not a time"),
    (["coded.mp4", "0", "30"], "after the video's end"),
    (["999999", "0", "1"], "There is no video 999999 in the index."),
    (["green.png", "0", "1"], "There is no video"),
    (["nowhere.mp4", "0", "1"], "nowhere.mp4 is neither a source id nor a file."),
])
def test_the_cli_says_what_is_wrong_in_one_sentence(index, library, tmp_path, args, message, monkeypatch):
    monkeypatch.chdir(library)
    result = CliRunner().invoke(main, ["clip", *args, "-o", str(tmp_path / "x.mp4"), "--index", str(index.path)])
    assert result.exit_code == 2
    assert re.fullmatch(r"Error: [^\n]+\n", result.output) and message in result.output
    assert not (tmp_path / "x.mp4").exists()


# The player in a real browser.
@pytest.fixture(scope="module")
def server(index):
    with serving(create_app(index)) as url:
        yield url


@pytest.fixture
def page(server):
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with chromium() as browser, checked_page(browser, accept_downloads=True) as page:
        yield page


def clip_href(page) -> str | None:
    return page.get_attribute("#clip-download", "href")


def test_the_player_downloads_the_moment_with_the_in_and_out_points_moved(page, server, index, tmp_path):
    sid = source_id(index, "shapes.mp4")
    page.goto(f"{server}/watch/{sid}?t=3&q=a+blue+square")
    assert page.locator("#clip h2").inner_text() == "Download clip"
    assert page.input_value("#clip-start") == "3" and page.input_value("#clip-end") == "6"
    assert clip_href(page) == f"/clip/{sid}?start=3&end=6"

    page.fill("#clip-start", "4.5")  # the in point moved by hand
    assert clip_href(page) == f"/clip/{sid}?start=4.5&end=6"
    assert "0:04.5–0:06 (1.5 s)" in page.inner_text("#clip-info")

    # "Set out to now": the playback time, once the video can play.
    page.wait_for_function("() => !document.querySelector('[data-set=clip-end]').disabled")
    page.evaluate("""() => new Promise(done => {
        const v = document.querySelector('video');
        v.pause();
        v.addEventListener('seeked', done, { once: true });
        v.currentTime = 7.25;
    })""")
    page.click("[data-set=clip-end]")
    assert page.input_value("#clip-end") == "7.25"
    assert clip_href(page) == f"/clip/{sid}?start=4.5&end=7.25"

    with page.expect_download() as download:
        page.click("#clip-download")
    assert download.value.suggested_filename == "shapes_0m4.5s-0m7.25s.mp4"
    saved = tmp_path / "clip.mp4"
    download.value.save_as(saved)
    with av.open(str(saved)) as c:
        assert abs(c.duration / 1e6 - 2.75) <= 1 / FPS + 0.001

    page.fill("#clip-end", "4")  # out before in: no link, and why
    assert clip_href(page) is None
    assert page.inner_text("#clip-info") == "The out point must come after the in point."


def test_choosing_another_moment_offers_it_as_the_clip(page, server, index):
    sid = source_id(index, "shapes.mp4")
    page.goto(f"{server}/watch/{sid}?t=0&q=a+circle")
    page.wait_for_function("() => !!document.querySelector('video').currentSrc")
    moments = page.locator(".moments a")
    assert moments.count() == 2
    later = moments.nth(1)
    start, end = later.get_attribute("data-t"), later.get_attribute("data-end")
    later.click()
    assert page.input_value("#clip-start") == start and page.input_value("#clip-end") == end
    assert clip_href(page) == f"/clip/{sid}?start={start}&end={end}"
