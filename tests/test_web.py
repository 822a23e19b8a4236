"""The web app through Flask's test client: pages, media with Range requests, proxies, the JSON API, bad input."""
from __future__ import annotations

import io
import os
import re
import shutil
import signal
import struct
import subprocess
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from media import draw, encode
from PIL import Image

from vidsearch.extract import open_media
from vidsearch.index import Index
from vidsearch.playback import playback, proxy_command
from vidsearch.renders import Cache, Jobs
from vidsearch.web import create_app
from vidsearch.web.app import DEFAULT_MAX_UPLOAD

CLIP_PLAN = [(3, "triangle", "orange"), (4, "square", "purple")]  # clip.avi: a purple square from 3 s to 7 s


def build_library(folder: Path, shapes_video: Path) -> Path:
    """shapes.mp4 (H.264), clip.avi (MPEG-4 part 2, which browsers cannot play) and three photos."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(shapes_video, folder / "shapes.mp4")
    frames = [draw(shape, colour) for seconds, shape, colour in CLIP_PLAN for _ in range(seconds * 25)]
    encode(folder / "clip.avi", frames, codec="mpeg4", extra=["-vtag", "DIVX", "-q:v", "4"])
    Image.fromarray(draw("square", "red", (240, 240))).save(folder / "red_square.png")
    Image.fromarray(draw("triangle", "blue", (300, 200))).save(folder / "blue_triangle.jpg", quality=90)
    Image.fromarray(draw("circle", "green", (200, 150))).save(folder / "green_circle.tif")  # browsers show no TIFF
    return folder


def png_bytes(rgb: np.ndarray, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, fmt)
    return buf.getvalue()


def png_header(width: int, height: int) -> bytes:
    """A PNG that declares a huge image in a few bytes (a decompression bomb's header; the pixels never come)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = chunk(b"IDAT", zlib.compress(b"\0" * 1000))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + pixels + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def library(tmp_path_factory, shapes_video) -> Path:
    return build_library(tmp_path_factory.mktemp("web") / "library", shapes_video[0])


@pytest.fixture(scope="module")
def index(tmp_path_factory, library, tiny_model):
    with Index(tmp_path_factory.mktemp("web") / "index", model=tiny_model) as idx:
        assert not idx.add([library]).skipped
        yield idx


@pytest.fixture(scope="module")
def app(index):
    app = create_app(index)
    yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def ids(index) -> dict[str, int]:
    return {os.path.basename(s.path): s.id for s in index.sources()}


@pytest.fixture(scope="module")
def frames(index, ids) -> dict[str, list[tuple[int, float]]]:
    """(frame id, t) of every frame, by file name, in time order."""
    out = {}
    for name, sid in ids.items():
        frame_ids, times, _ = index.frames(sid)
        out[name] = list(zip(frame_ids, times.tolist()))
    return out


def cards(html: str) -> list[dict]:
    return [{"weak": bool(m[0]), "kind": m[1], "t": float(m[2]), "start": float(m[3]), "end": float(m[4]),
             "href": m[5].replace("&amp;", "&"), "thumb": m[6]}
            for m in re.findall(r'<li class="card( weak)?" data-kind="(\w+)" data-t="([\d.]+)" data-start="([\d.]+)" '
                                r'data-end="([\d.]+)">\s*<a class="open" href="([^"]+)">\s*<span class="thumb">\s*'
                                r'<img src="([^"]+)"', html)]


def moments_of(hits: list[dict], name: str) -> list[tuple[float, float]]:
    return sorted((h["start"], h["end"]) for h in hits if h["source"] == name)


# -- pages -----------------------------------------------------------------------------------------------------

def test_search_page_has_text_and_image_search_and_works_offline(client, index):
    r = client.get("/")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert 'name="q"' in html and 'type="file" name="image"' in html and 'enctype="multipart/form-data"' in html
    for name in ["neg", "w_text", "w_image", "w_neg", "per_video", "k", "min_score"]:
        assert f'name="{name}"' in html, name
    assert f'placeholder="{index.min_score:g}"' in html  # the index's minimum score
    assert 'name="viewport"' in html and 'class="results"' not in html
    # Everything the page loads is ours: no CDN.
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/"), url
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("query", ["/?q=", "/?q=+++", "/?q=&k=5", "/?q=&neg=&w_text=2&per_video=1"])
def test_an_empty_query_is_the_plain_search_page(client, query):
    r = client.get(query)
    assert r.status_code == 200 and 'class="results"' not in r.get_data(as_text=True)


def test_text_search_shows_moments_with_both_scores(client, ids):
    r = client.get("/?q=a+blue+square&k=6")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    found = cards(html)
    assert 1 <= len(found) <= 6 and not any(c["weak"] for c in found)
    video = next(c for c in found if c["kind"] == "video")
    assert (video["start"], video["end"]) == (3, 6) and 3 <= video["t"] < 6  # the blue square, by its best frame
    assert video["href"].startswith(f"/watch/{ids['shapes.mp4']}?t=3&q=a+blue+square")  # opens at the start
    assert "▶ 0:03–0:06" in html and "shapes.mp4" in html
    assert re.search(r'class="score" title="[^"]*cosine[^"]*standard deviations[^"]*">\d\.\d{3} · [+-]\d+\.\dσ<', html)
    assert client.get(found[0]["thumb"]).mimetype == "image/jpeg"
    assert "“a blue square”" in html and 'value="a blue square"' in html  # the query stays in the box


def test_k_and_min_score(client):
    assert len(cards(client.get("/?q=a+circle&k=2").get_data(as_text=True))) == 2
    found = cards(client.get("/?q=a+circle&min_score=0.999").get_data(as_text=True))
    assert 1 <= len(found) <= 2 and all(c["weak"] for c in found)


def test_a_query_that_matches_nothing_says_so_and_shows_the_nearest_two_as_weak(client):
    html = client.get("/?q=a+purple+triangle").get_data(as_text=True)
    found = cards(html)
    assert "No good match for “a purple triangle” — the nearest:" in html
    assert 1 <= len(found) <= 2 and all(c["weak"] for c in found) and html.count('class="weak-tag"') == len(found)
    assert "No good match" not in client.get("/?q=a+yellow+circle").get_data(as_text=True)


def test_a_negative_text_pushes_out_what_it_names(client):
    html = client.get("/?q=a+circle&neg=something+red&w_neg=1").get_data(as_text=True)
    assert [(c["start"], c["end"]) for c in cards(html) if c["kind"] == "video"] == [(9, 12)]
    assert "“a circle”, not “something red”" in html and 'name="neg" value="something red"' in html


def test_more_like_this_on_every_result(client):
    found = cards(client.get("/?q=a+square").get_data(as_text=True))
    html = client.get("/?q=a+square").get_data(as_text=True)
    likes = re.findall(r'<a class="like" href="/\?like=(\d+)">More like this</a>', html)
    assert len(likes) == len(found) >= 2
    r = client.get(f"/?like={likes[0]}")
    again = r.get_data(as_text=True)
    assert r.status_code == 200 and cards(again)[0]["thumb"] == found[0]["thumb"]
    assert f'name="like" value="{likes[0]}" checked' in again  # can be refined, or unticked


def test_the_cap_on_moments_per_video_shows_how_many_more_and_links_to_them(client, ids):
    html = client.get("/?q=a+circle&per_video=1").get_data(as_text=True)
    shapes = [c for c in cards(html) if c["href"].startswith(f"/watch/{ids['shapes.mp4']}?")]
    assert len(shapes) == 1
    [more] = re.findall(r'<a class="more" href="([^"]+)">\+1 more moment in this video', html)
    assert more.replace("&amp;", "&").startswith(f"/watch/{ids['shapes.mp4']}?t=") and more.endswith("#moments")
    watch = client.get(more.replace("&amp;", "&").split("#")[0]).get_data(as_text=True)
    assert len(re.findall(r'<li><a href="[^"]+" data-t=', watch)) == 2  # all of them are there
    html = client.get("/?q=a+circle&per_video=0").get_data(as_text=True)
    assert len([c for c in cards(html) if c["kind"] == "video"]) == 2 and 'class="more"' not in html


def test_photo_results_open_the_full_image(client, ids):
    found = cards(client.get("/?q=a+red+square&k=3").get_data(as_text=True))
    photo = next(c for c in found if c["kind"] == "image")
    assert photo["href"] == f"/image/{ids['red_square.png']}" and photo["start"] == photo["end"] == 0
    r = client.get(photo["href"])
    assert r.mimetype == "image/png" and Image.open(io.BytesIO(r.data)).size == (240, 240)
    r = client.get(f"/image/{ids['green_circle.tif']}")  # shown as a JPEG
    assert r.mimetype == "image/jpeg" and Image.open(io.BytesIO(r.data)).size == (200, 150)
    assert client.get(f"/media/{ids['green_circle.tif']}").mimetype == "image/tiff"
    assert client.get(f"/image/{ids['shapes.mp4']}").status_code == 404


def test_image_search_is_posted_and_its_watch_pages_redo_it(client, ids):
    data = {"image": (io.BytesIO(png_bytes(draw("square", "purple"))), "purple.png"), "k": "4", "neg": "",
            "w_image": "2"}
    r = client.post("/", data=data, content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    found = cards(html)
    assert 1 <= len(found) <= 4 and (found[0]["start"], found[0]["end"]) == (3, 7)
    assert found[0]["href"].startswith(f"/watch/{ids['clip.avi']}?t=3&qimg=")
    assert 'src="data:image/jpeg;base64,' in html and "your image" in html
    # The watch page has no upload: it finds the image by its token, and says so when the token is gone.
    watch = client.get(found[0]["href"]).get_data(as_text=True)
    assert 'class="timeline"' in watch and "no longer kept" not in watch
    token = re.search(r"qimg=([\w-]+)", found[0]["href"])[1]
    assert f'name="qimg" value="{token}" checked' in html  # a text refinement keeps the image
    gone = client.get(found[0]["href"].replace(token, "expired")).get_data(as_text=True)
    assert "no longer kept" in gone and 'class="timeline"' not in gone


def test_uploaded_images_are_kept_in_a_bounded_memory(app):
    images = app.extensions["vidsearch"].images
    tokens = [images.put(np.zeros((2, 2, 3), np.uint8)) for _ in range(images.size + 1)]
    assert images.get(tokens[0]) is None and images.get(tokens[-1]) is not None and len(set(tokens)) == len(tokens)


def test_a_post_without_image_or_text_is_the_plain_page(client):
    r = client.post("/", data={"k": "5"}, content_type="multipart/form-data")
    assert r.status_code == 200 and 'class="results"' not in r.get_data(as_text=True)


def test_watch_page_starts_at_the_moment_with_a_timeline_of_the_query(client, ids, frames):
    sid = ids["shapes.mp4"]
    r = client.get(f"/watch/{sid}?t=9&q=a+circle")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert f'src="/play/{sid}#t=9"' in html and 'data-start="9"' in html
    assert "shapes.mp4" in html and '<strong id="time">0:09</strong>' in html and "of 0:12" in html
    # The timeline: the score at every sample (12 of them, as steps), and both circle moments as links.
    timeline = html.split('<figure class="timeline">')[1].split("</figure>")[0]
    curve = re.search(r'class="curve" d="([^"]+)"', timeline)[1]
    assert curve.startswith("M0.0,") and len(curve.split(" L")) >= 4
    marks = re.findall(r'<a class="mark" href="([^"]+)" data-t="([\d.]+)"', timeline)
    assert [float(t) for _, t in marks] == [0, 9]
    assert marks[0][0].replace("&amp;", "&") == f"/watch/{sid}?t=0&q=a+circle"
    assert re.findall(r'<rect class="band" x="([\d.]+)" y="0" width="([\d.]+)"', timeline) == [
        ("0.0", "250.0"), ("750.0", "250.0")]  # 0–3 s and 9–12 s of 12 s, on 1000 units
    assert 'class="threshold"' in timeline
    # The list of matches in this video: the same moments, in time order, the current one marked.
    listed = re.findall(r'<li><a href="([^"]+)" data-t="([\d.]+)"', html)
    assert [float(t) for _, t in listed] == [0, 9] and "0:00–0:03" in html and "0:09–0:12" in html
    assert html.count('aria-current="true"') == 2  # the mark and the list entry of 9–12 s
    assert client.get(listed[0][0].replace("&amp;", "&")).status_code == 200


def test_watch_page_without_a_query_has_no_timeline(client, ids):
    html = client.get(f"/watch/{ids['shapes.mp4']}?t=2").get_data(as_text=True)
    assert 'class="timeline"' not in html and 'data-start="2"' in html


def test_watch_page_of_a_weak_query_says_no_moment_matches(client, ids):
    html = client.get(f"/watch/{ids['clip.avi']}?q=a+purple+triangle").get_data(as_text=True)
    assert 'class="timeline"' in html and "No moment of this video reaches the minimum score" in html


def test_watch_urls_of_search_results_work(client):
    for c in cards(client.get("/?q=something+green&k=8&neg=a+circle&w_text=2").get_data(as_text=True)):
        assert client.get(c["href"]).status_code == 200
        if c["kind"] == "video":
            assert "neg=a+circle" in c["href"] and "w_text=2" in c["href"]


def test_watch_page_time_is_clamped_and_checked(client, ids):
    sid = ids["shapes.mp4"]
    assert 'id="time">0:12<' in client.get(f"/watch/{sid}?t=5000").get_data(as_text=True)
    for bad in ["t=abc", "t=-1", "t=nan", "t=inf", "q=x&w_text=11", "like=x", "q=x&min_score=3"]:
        r = client.get(f"/watch/{sid}?{bad}")
        assert r.status_code == 400, bad


def test_watch_page_of_a_photo_redirects_to_the_photo(client, ids):
    r = client.get(f"/watch/{ids['red_square.png']}")
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/image/{ids['red_square.png']}")


# -- media -----------------------------------------------------------------------------------------------------

def test_media_are_served_with_their_mime_types(client, ids, library, frames):
    for name, mime in [("shapes.mp4", "video/mp4"), ("clip.avi", "video/x-msvideo"), ("red_square.png", "image/png"),
                       ("blue_triangle.jpg", "image/jpeg")]:
        r = client.get(f"/media/{ids[name]}")
        assert r.status_code == 200 and r.mimetype == mime, name
        assert r.data == (library / name).read_bytes()
        assert r.headers["Accept-Ranges"] == "bytes"
    r = client.get(f"/thumb/{frames['shapes.mp4'][0][0]}")
    assert r.status_code == 200 and r.mimetype == "image/jpeg" and r.data[:2] == b"\xff\xd8"


def test_range_requests(client, ids, library):
    data = (library / "shapes.mp4").read_bytes()
    size = len(data)
    url = f"/media/{ids['shapes.mp4']}"
    cases = {"bytes=0-99": (0, 99), "bytes=100-": (100, size - 1), "bytes=-100": (size - 100, size - 1),
             f"bytes=1000-{size + 5000}": (1000, size - 1)}
    for header, (start, end) in cases.items():
        r = client.get(url, headers={"Range": header})
        assert r.status_code == 206, header
        assert r.headers["Content-Range"] == f"bytes {start}-{end}/{size}", header
        assert r.data == data[start:end + 1] and int(r.headers["Content-Length"]) == end - start + 1
        assert r.mimetype == "video/mp4"
    for header in [f"bytes={size}-", f"bytes={size + 10}-{size + 20}"]:
        r = client.get(url, headers={"Range": header})
        assert r.status_code == 416, header
        assert r.headers["Content-Range"] == f"bytes */{size}"
    assert client.get(url, headers={"Range": "bytes=abc"}).status_code in (200, 416)


def test_play_serves_a_browser_playable_original_as_it_is(client, ids, library):
    r = client.get(f"/play/{ids['shapes.mp4']}", headers={"Range": "bytes=0-9"})
    assert r.status_code == 206 and r.mimetype == "video/mp4" and r.data == (library / "shapes.mp4").read_bytes()[:10]
    assert client.get(f"/api/play/{ids['shapes.mp4']}").json == {
        "source_id": ids["shapes.mp4"], "state": "ready", "proxy": False, "url": f"/play/{ids['shapes.mp4']}",
        "progress": None, "error": None}


def test_a_video_browsers_cannot_play_gets_an_h264_proxy(app, client, ids, index, tmp_path, monkeypatch):
    """While the proxy is being made the watch page says so and /play answers 503; then it plays the proxy."""
    sid = ids["clip.avi"]
    jobs = Jobs(Cache(tmp_path))  # not the app's: other tests' watch pages may have made its proxy already
    monkeypatch.setattr(index, "_jobs", jobs)
    gate = threading.Event()
    make = jobs.cache.make
    jobs.cache.make = lambda *args: (gate.wait(30), make(*args))[1]
    try:
        html = client.get(f"/watch/{sid}?t=4").get_data(as_text=True)
        assert "Preparing a browser-playable copy" in html and 'data-state="preparing"' in html
        assert " src=" not in html.split("<video", 1)[1].split(">", 1)[0]
        status = client.get(f"/api/play/{sid}").json
        assert status["state"] == "preparing" and status["proxy"] and status["url"] is None
        r = client.get(f"/play/{sid}")
        assert r.status_code == 503 and r.headers["Retry-After"] == "2"
        gate.set()
        index.playback(sid).job.result(60)
        assert client.get(f"/api/play/{sid}").json["state"] == "ready"
        [proxy] = (tmp_path / "renders").glob(f"{sid}-*.mp4")
        r = client.get(f"/play/{sid}", headers={"Range": "bytes=0-99"})
        assert r.status_code == 206 and r.mimetype == "video/mp4"
        assert r.headers["Content-Range"] == f"bytes 0-99/{proxy.stat().st_size}"
        assert f'src="/play/{sid}#t=4"' in client.get(f"/watch/{sid}?t=4").get_data(as_text=True)
        assert client.get(f"/media/{sid}").mimetype == "video/x-msvideo"  # the original is still the original
    finally:
        gate.set()
        jobs.close()


def sampled(path: Path) -> list[tuple[float, tuple]]:
    media = open_media(str(path))
    try:
        return [(round(f.t, 3), tuple(np.round(f.rgb.reshape(-1, 3).mean(0) / 8))) for f in media.frames(0.5, 180)]
    finally:
        media.close()


def test_proxy_timeline_is_the_originals(tmp_path, library):
    """Frames sampled from a proxy have the same times and pictures as from the original, constant frame rate or
    variable, so a catalog time is the same moment in the player."""
    pts = [0, 0.4, 0.5, 1.7, 1.75, 2.9, 3.6, 4.0]
    colours = ["red", "blue", "green", "yellow", "purple", "orange", "black", "white"]
    vfr = encode(tmp_path / "vfr.mp4", [draw("circle", c, background="grey") for c in colours], pts=pts,
                 codec="mpeg4")
    for original in [library / "clip.avi", vfr]:
        proxy = tmp_path / (original.stem + ".proxy.mp4")
        subprocess.run(proxy_command(str(original), str(proxy)), check=True, capture_output=True)
        a, b = sampled(original), sampled(proxy)
        assert [t for t, _ in a] == [t for t, _ in b], original.name
        assert all(np.abs(np.subtract(ca, cb)).max() <= 1 for (_, ca), (_, cb) in zip(a, b)), original.name
    gaps = np.diff([t for t, _ in sampled(vfr)])
    assert gaps.max() - gaps.min() > 0.5  # it was variable frame rate indeed


def test_a_proxy_is_made_once_and_remade_for_a_changed_file(tmp_path, library):
    src = tmp_path / "clip.avi"
    shutil.copy(library / "clip.avi", src)
    jobs = Jobs(Cache(tmp_path / "index"))
    made = []
    make = jobs.cache.make
    jobs.cache.make = lambda key, *args: (made.append(key), make(key, *args))[1]

    def ready():
        playback(jobs, 7, str(src), 7.0).job.result(60)
        return playback(jobs, 7, str(src), 7.0)

    try:
        threads = [threading.Thread(target=playback, args=(jobs, 7, str(src), 7.0)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        first = ready()
        assert first.state == "ready" and first.proxy and len(made) == 1
        assert playback(jobs, 7, str(src), 7.0).file == first.file and len(made) == 1
        os.utime(src, ns=(0, src.stat().st_mtime_ns + 10**9))  # a changed file: a new proxy replaces the old
        assert playback(jobs, 7, str(src), 7.0).state == "preparing"
        second = ready()
        assert second.state == "ready" and second.file != first.file and len(made) == 2
        assert sorted(p.name for p in (tmp_path / "index" / "renders").glob("*.mp4*")) == [second.file.name]
        # A fresh server finds the proxy on disk.
        assert playback(Jobs(Cache(tmp_path / "index")), 7, str(src), 7.0).file == second.file
    finally:
        jobs.close()


def test_a_broken_video_fails_once_with_a_reason(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"RIFF" + os.urandom(3000))
    jobs = Jobs(Cache(tmp_path / "index"))
    try:
        playback(jobs, 3, str(bad), 1.0).job.done.wait(60)
        result = playback(jobs, 3, str(bad), 1.0)
        assert result.state == "failed" and result.error.startswith("ffmpeg could not convert")
        assert playback(jobs, 3, str(bad), 1.0).job is result.job  # not tried again for the same file
        assert not list((tmp_path / "index" / "renders").glob("*.mp4*"))  # no part file left
        assert playback(jobs, 3, str(tmp_path / "gone.avi"), 1.0).error == "The file is no longer on disk."
    finally:
        jobs.close()


# -- JSON API --------------------------------------------------------------------------------------------------

HIT_KEYS = {"frame_id", "source_id", "source", "kind", "t", "start", "end", "time", "score", "z", "weak", "also",
            "thumbnail_url", "watch_url", "media_url"}


def test_api_text_search(client, ids, index):
    r = client.get("/api/search?q=a+green+triangle&k=5&min_score=-1&per_video=0")
    body = r.json
    assert r.status_code == 200 and body["query"] == {
        "q": "a green triangle", "neg": None, "image": False, "qimg": None, "like": None, "w_text": 1.0,
        "w_image": 1.0, "w_neg": 1.0, "k": 5, "min_score": -1, "per_video": 0, "kind": None, "folder": None,
        "after": None, "before": None, "min_duration": None, "max_duration": None}
    assert body["min_score"] == -1 and body["no_good_match"] is False
    assert body["count"] == len(body["hits"]) == 5
    top = body["hits"][0]
    assert set(top) == HIT_KEYS
    assert top["source"] == "shapes.mp4" and top["kind"] == "video" and (top["start"], top["end"]) == (6, 9)
    assert 6 <= top["t"] < 9 and top["time"] == "0:06–0:09" and top["z"] > 1 and top["weak"] is False
    assert top["watch_url"] == f"/watch/{ids['shapes.mp4']}?t=6&q=a+green+triangle&min_score=-1"
    assert [h["score"] for h in body["hits"]] == sorted((h["score"] for h in body["hits"]), reverse=True)
    assert [h["z"] for h in body["hits"]] == sorted((h["z"] for h in body["hits"]), reverse=True)
    for h in body["hits"]:
        for key in ("thumbnail_url", "watch_url", "media_url"):
            assert client.get(h[key]).status_code == 200, h[key]
    default = client.get("/api/search?q=a+green+triangle").json
    assert default["min_score"] == index.min_score and default["query"]["min_score"] is None
    assert all(h["score"] >= index.min_score for h in default["hits"])


def test_api_says_when_nothing_is_a_good_match(client, index):
    body = client.get("/api/search?q=a+purple+triangle").json
    assert body["no_good_match"] is True and 1 <= body["count"] <= 2
    assert all(h["weak"] and h["score"] < body["min_score"] == index.min_score for h in body["hits"])


def test_api_negative_text_removes_what_it_names(client):
    plain = client.get("/api/search?q=a+circle&per_video=0").json["hits"]
    assert moments_of(plain, "shapes.mp4") == [(0, 3), (9, 12)]  # red and yellow circles
    body = client.get("/api/search?q=a+circle&neg=something+red&per_video=0").json
    assert body["query"]["neg"] == "something red"
    assert moments_of(body["hits"], "shapes.mp4") == [(9, 12)]
    weak_not = client.get("/api/search?q=a+circle&neg=something+red&w_neg=0&per_video=0").json["hits"]
    assert moments_of(weak_not, "shapes.mp4") == [(0, 3), (9, 12)]  # a weight of 0 turns it off


def test_api_more_like_this_returns_the_frames_own_moment_first(client, frames):
    blue = next(fid for fid, t in frames["shapes.mp4"] if 3 <= t < 6)
    body = client.get(f"/api/search?like={blue}&k=3").json
    top = body["hits"][0]
    assert body["query"]["like"] == blue and (top["source"], top["start"], top["end"]) == ("shapes.mp4", 3, 6)
    assert client.get("/api/search?like=999999").status_code == 400


def test_api_per_video_caps_moments_of_one_video(client):
    assert len(moments_of(client.get("/api/search?q=a+circle").json["hits"], "shapes.mp4")) == 2
    assert len(moments_of(client.get("/api/search?q=a+circle&per_video=1").json["hits"], "shapes.mp4")) == 1


def test_api_image_search_with_and_without_text(client, ids):
    image = png_bytes(draw("square", "red", (200, 200)))
    r = client.post("/api/search", data={"image": (io.BytesIO(image), "q.png"), "k": "3"})
    assert r.status_code == 200 and r.json["query"]["image"] is True
    assert r.json["hits"][0]["source"] == "red_square.png"
    token = r.json["query"]["qimg"]
    assert client.get(f"/api/search?qimg={token}&k=3").json["hits"][0]["source"] == "red_square.png"
    r = client.post("/api/search", data={"image": (io.BytesIO(image), "q.png"), "q": "a red circle", "w_image": "0.2"})
    assert r.status_code == 200 and r.json["query"]["q"] == "a red circle" and r.json["count"] > 0
    assert client.post("/api/search", data={"q": "a red circle"}).json["count"] > 0
    r = client.get("/api/search?qimg=expired&q=a+red+circle")
    assert r.status_code == 400 and "upload it again" in r.json["error"]


def test_api_info(client, index):
    info = client.get("/api/info").json
    assert info["sources"] == 5 and info["videos"] == 2 and info["images"] == 3 and info["frames"] > 20
    assert info["model"] == index.model and info["max_upload_bytes"] == DEFAULT_MAX_UPLOAD == 20 * 1024 * 1024


@pytest.mark.parametrize("query", [
    "", "?q=", "?q=%20", "?q=x&k=0", "?q=x&k=201", "?q=x&k=abc", "?q=x&k=1.5", "?q=x&min_score=2",
    "?q=x&min_score=nan", "?q=x&min_score=abc", "?q=x&min_score=-inf", "?q=" + "x" * 1001, "?q=x&neg=" + "x" * 1001,
    "?q=x&w_text=11", "?q=x&w_text=-0.1", "?q=x&w_image=abc", "?q=x&w_neg=nan", "?q=x&w_neg=inf",
    "?q=x&per_video=51", "?q=x&per_video=-1", "?q=x&per_video=1.5", "?like=abc", "?like=-1", "?like=1.0",
    "?like=99999999999999999999", "?neg=something", "?q=x&w_text=0"])
def test_api_bad_queries_are_400_with_a_message(client, query):
    r = client.get("/api/search" + query)
    assert r.status_code == 400 and r.mimetype == "application/json" and r.json["error"]


@pytest.mark.parametrize("query, message", [("w_text=11", "w_text must be a number from 0 to 10"),
                                            ("per_video=51", "per_video must be a whole number from 0 to 50"),
                                            ("w_text=0", "weights")])
def test_weights_are_checked_on_the_page_too(client, query, message):
    r = client.get(f"/?q=a+circle&{query}")
    assert r.status_code == 400 and r.mimetype == "text/html" and message in r.get_data(as_text=True)


def test_api_errors_are_json(client, ids):
    assert client.get("/api/nothing").json["error"] and client.get("/api/nothing").status_code == 404
    r = client.delete("/api/search")
    assert r.status_code == 405 and "GET" in r.headers["Allow"] and r.json["error"]
    r = client.get(f"/api/play/{ids['red_square.png']}")
    assert r.status_code == 404 and r.json == {"error": f"There is no video {ids['red_square.png']} in the index."}
    assert client.post("/api/search", data={}).status_code == 400


# -- bad input -------------------------------------------------------------------------------------------------

def post_image(client, data: bytes, url: str = "/api/search", name: str = "upload.png"):
    return client.post(url, data={"image": (io.BytesIO(data), name)}, content_type="multipart/form-data")


@pytest.mark.parametrize("url", ["/api/search", "/"])
def test_uploads_over_the_limit_are_413(client, url):
    limit = DEFAULT_MAX_UPLOAD
    for size in (limit + 1, limit + 1024 * 1024):  # caught on the file, and on the request body
        r = post_image(client, b"\0" * size, url)
        assert r.status_code == 413, size
        message = r.json["error"] if url.startswith("/api") else r.get_data(as_text=True)
        assert "limit of 20.0 MB" in message


def test_the_upload_limit_is_configurable(index):
    app = create_app(index, max_upload=1000)
    client = app.test_client()
    r = post_image(client, png_bytes(np.random.default_rng(0).integers(0, 255, (100, 100, 3), np.uint8)))
    assert r.status_code == 413 and "1000 B" in r.json["error"]
    assert post_image(client, png_bytes(np.zeros((8, 8, 3), np.uint8))).status_code == 200


def eps() -> bytes:
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nnewpath 0 0 moveto 10 10 lineto stroke\n%%EOF\n"


@pytest.mark.parametrize("data, message", [
    pytest.param(b"", "empty", id="empty"),
    pytest.param(b"hello, this is not an image\n" * 10, "not an image", id="text"),
    pytest.param(png_bytes(draw("circle", "red"))[:300], "damaged", id="truncated-png"),
    pytest.param(png_bytes(draw("circle", "red"), "JPEG")[:1500], "damaged", id="truncated-jpeg"),
    pytest.param(png_header(100_000, 100_000), "too many pixels", id="bomb"),  # Pillow itself refuses it
    pytest.param(png_header(10_000, 10_000), "too many pixels", id="bomb-pillow-only-warns-of"),
    pytest.param(eps(), "not an image", id="eps"),  # Pillow would run Ghostscript on it
])
@pytest.mark.parametrize("url", ["/api/search", "/"])
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_bad_uploads_are_400_with_a_message(client, url, data, message):
    r = post_image(client, data, url)
    assert r.status_code == 400
    text = r.json["error"] if url.startswith("/api") else r.get_data(as_text=True)
    assert message in text


@pytest.mark.parametrize("body, content_type", [
    pytest.param(b"garbage", "multipart/form-data", id="no-boundary"),
    pytest.param(b"garbage", "multipart/form-data; boundary=xyz", id="no-parts"),
    pytest.param(b'--xyz\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\nabc',
                 "multipart/form-data; boundary=xyz", id="unterminated-part"),
    pytest.param(b"q=red+circle", "application/x-www-form-urlencoded", id="urlencoded"),
    pytest.param(b'{"q": "red"}', "application/json", id="json"),
])
def test_malformed_posts_are_never_500(client, body, content_type):
    for url in ("/", "/api/search"):
        r = client.post(url, data=body, content_type=content_type)
        assert r.status_code in (200, 400), (url, body)


ID_ROUTES = ["/media/{}", "/image/{}", "/thumb/{}", "/play/{}", "/watch/{}", "/api/play/{}"]
TRAVERSALS = ["../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/etc/passwd",
              "%2Fetc%2Fpasswd", "..", "%2e%2e", "1/../../etc/passwd", "..%5c..%5cwindows", "-1", "1.0", "0x1",
              "99999999", "99999999999999999999999", "%D9%A1", "1%00", "1;", "%20"]


@pytest.mark.parametrize("route", ID_ROUTES)
def test_ids_that_are_not_in_the_catalog_are_404(client, route, library):
    for bad in TRAVERSALS + [str(library / "shapes.mp4")]:
        r = client.get(route.format(bad))
        assert r.status_code == 404, (route, bad)
        assert b"root:" not in r.data


def test_a_frame_id_is_not_a_source_id_nor_the_reverse(client, ids, frames):
    biggest_frame = max(fid for fs in frames.values() for fid, _ in fs)
    assert client.get(f"/media/{biggest_frame}").status_code == 404
    assert client.get(f"/thumb/{biggest_frame + 1}").status_code == 404


def test_files_gone_from_disk_are_404(tmp_path, tiny_model):
    folder = tmp_path / "lib"
    folder.mkdir()
    Image.fromarray(draw("circle", "red")).save(folder / "a.png")
    idx = Index(tmp_path / "index", model=tiny_model)
    idx.add([folder])
    app = create_app(idx)
    try:
        client = app.test_client()
        [hit] = idx.search("red circle", k=1)
        (folder / "a.png").unlink()
        Path(hit.thumbnail).unlink()
        assert client.get(f"/media/{hit.source_id}").status_code == 404
        assert client.get(f"/thumb/{hit.frame_id}").status_code == 404
    finally:
        idx.close()


@pytest.mark.parametrize("url", ["/?q=%00", "/?q=%ff%fe", "/?q=a&q=b", "/?k=", "/?q=x&k=%D9%A1", "/?q=x&k=1e400",
                                 "/?q=x&min_score=1e400", "/static/../app.py", "/static/%2e%2e/app.py", "/nothing",
                                 "/api/search?q=%00", "/watch/1?t=1e400", "/watch/1?q=x&qimg=%00",
                                 "/?like=%D9%A1", "/?like=1&w_image=0", "/?qimg=" + "x" * 5000, "/watch/5?like=1e400",
                                 "/?q=x&per_video=%00", "/api/search?q=x&w_neg=1e400", "/?q=" + "é" * 999])
def test_odd_requests_are_never_500(client, url):
    assert client.get(url).status_code < 500, url


def test_pages_send_security_headers(client):
    r = client.get("/")
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]


def test_errors_on_pages_are_html_with_the_message(client):
    r = client.get("/?q=x&k=abc")
    assert r.status_code == 400 and r.mimetype == "text/html" and "k must be a whole number" in r.get_data(as_text=True)
    r = client.get("/media/424242")
    assert r.status_code == 404 and "There is no source 424242 in the index." in r.get_data(as_text=True)


# -- vidsearch serve -------------------------------------------------------------------------------------------

def test_serve_indexes_the_paths_then_serves(tmp_path, library, tiny_model, monkeypatch):
    import waitress
    from click.testing import CliRunner

    from vidsearch.cli import main

    served = {}

    class FakeServer:
        effective_port = 8123

        def __init__(self, app):
            self.app = app

        def run(self):  # what a browser would see while the server runs
            served["hits"] = self.app.test_client().get("/api/search?q=red+square").json["hits"]

    def create_server(app, **kwargs):
        served.update(kwargs)
        return FakeServer(app)

    monkeypatch.setattr(waitress, "create_server", create_server)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # serve's SIGTERM handler: not in pytest's process
    index_dir = tmp_path / "index"
    runner = CliRunner()
    result = runner.invoke(main, ["serve", str(library / "red_square.png"), "--index", str(index_dir),
                                  "--model", tiny_model, "--port", "0"])
    assert result.exit_code == 0, result.output
    assert "1 sources indexed" in result.output and "http://127.0.0.1:8123/" in result.output
    assert served["host"] == "127.0.0.1" and served["port"] == 0
    assert served["hits"][0]["source"] == "red_square.png"
    result = runner.invoke(main, ["serve", "--index", str(index_dir)])  # no paths: the index as it is
    assert result.exit_code == 0 and "indexed" not in result.output and "Serving 1 sources" in result.output
    result = runner.invoke(main, ["serve", "--index", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no vidsearch index" in result.output
