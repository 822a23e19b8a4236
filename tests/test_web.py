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
from vidsearch.web import create_app
from vidsearch.web.app import DEFAULT_MAX_UPLOAD
from vidsearch.web.proxy import Proxies, proxy_command

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
    idx = Index(tmp_path_factory.mktemp("web") / "index", model=tiny_model)
    report = idx.add([library])
    assert not report.skipped
    yield idx
    idx.close()


@pytest.fixture(scope="module")
def app(index):
    app = create_app(index)
    yield app
    app.extensions["vidsearch"].proxies.close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def ids(index) -> dict[str, int]:
    return {os.path.basename(s["path"]): s["id"] for s in index.sources()}


@pytest.fixture(scope="module")
def frames(index, ids) -> dict[str, list[tuple[int, float]]]:
    """(frame id, t) of every frame, by file name."""
    store = index.store
    hits = index.search("x", k=1000)
    rows = store.frames([h.frame_id for h in hits])
    names = {v: k for k, v in ids.items()}
    out: dict[str, list[tuple[int, float]]] = {}
    for r in sorted(rows.values(), key=lambda r: r["t"]):
        out.setdefault(names[r["source_id"]], []).append((r["id"], r["t"]))
    return out


def cards(html: str) -> list[dict]:
    return [{"kind": m[0], "t": float(m[1]), "href": m[2].replace("&amp;", "&"), "thumb": m[3]}
            for m in re.findall(r'<li class="card" data-kind="(\w+)" data-t="([\d.]+)">\s*<a href="([^"]+)">'
                                r'\s*<span class="thumb">\s*<img src="([^"]+)"', html)]


# -- pages -----------------------------------------------------------------------------------------------------

def test_search_page_has_text_and_image_search_and_works_offline(client):
    r = client.get("/")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert 'name="q"' in html and 'type="file" name="image"' in html and 'enctype="multipart/form-data"' in html
    assert 'name="k"' in html and 'name="min_score"' in html and 'name="viewport"' in html
    assert 'class="results"' not in html
    # Everything the page loads is ours: no CDN.
    for url in re.findall(r'(?:src|href)="([^"]+)"', html):
        assert url.startswith("/"), url
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize("query", ["/?q=", "/?q=+++", "/?q=&k=5"])
def test_an_empty_query_is_the_plain_search_page(client, query):
    r = client.get(query)
    assert r.status_code == 200 and 'class="results"' not in r.get_data(as_text=True)


def test_text_search_shows_thumbnails_names_times_and_scores(client, ids):
    r = client.get("/?q=blue+square&k=6")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    found = cards(html)
    assert 1 <= len(found) <= 6
    first_video = next(c for c in found if c["kind"] == "video")
    assert first_video["href"].startswith(f"/watch/{ids['shapes.mp4']}?t=")
    assert 3 <= first_video["t"] < 6
    assert f"▶ 0:0{int(first_video['t'])}" in html
    assert "shapes.mp4" in html and re.search(r'class="score"[^>]*>-?\d\.\d{3}<', html)
    assert client.get(found[0]["thumb"]).mimetype == "image/jpeg"
    assert "“blue square”" in html and 'value="blue square"' in html  # the query stays in the box


def test_k_and_min_score(client):
    assert len(cards(client.get("/?q=red+circle&k=2").get_data(as_text=True))) == 2
    html = client.get("/?q=red+circle&min_score=0.999").get_data(as_text=True)
    assert cards(html) == [] and "Nothing matched" in html


def test_photo_results_open_the_full_image(client, ids):
    found = cards(client.get("/?q=red+square&k=3").get_data(as_text=True))
    photo = next(c for c in found if c["kind"] == "image")
    assert photo["href"] == f"/image/{ids['red_square.png']}"
    r = client.get(photo["href"])
    assert r.mimetype == "image/png" and Image.open(io.BytesIO(r.data)).size == (240, 240)
    r = client.get(f"/image/{ids['green_circle.tif']}")  # shown as a JPEG
    assert r.mimetype == "image/jpeg" and Image.open(io.BytesIO(r.data)).size == (200, 150)
    assert client.get(f"/media/{ids['green_circle.tif']}").mimetype == "image/tiff"
    assert client.get(f"/image/{ids['shapes.mp4']}").status_code == 404


def test_image_search_is_posted_and_shows_the_query_image(client, ids):
    data = {"image": (io.BytesIO(png_bytes(draw("square", "purple"))), "purple.png"), "k": "4"}
    r = client.post("/", data=data, content_type="multipart/form-data")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    found = cards(html)
    assert len(found) == 4 and found[0]["href"].startswith(f"/watch/{ids['clip.avi']}?")
    assert 'src="data:image/jpeg;base64,' in html and "your image" in html


def test_a_post_without_image_or_text_is_the_plain_page(client):
    r = client.post("/", data={"k": "5"}, content_type="multipart/form-data")
    assert r.status_code == 200 and 'class="results"' not in r.get_data(as_text=True)


def test_watch_page_starts_at_the_hit_and_links_the_other_hits_in_that_video(client, ids, frames):
    sid = ids["shapes.mp4"]
    (f3, t3), (f7, t7) = frames["shapes.mp4"][3], frames["shapes.mp4"][7]
    other = frames["red_square.png"][0][0]  # a hit in another source: not listed
    r = client.get(f"/watch/{sid}?t={t7}&hits={f7},{f3},{other}")
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert f'src="/play/{sid}#t={t7:g}"' in html and f'data-start="{t7:g}"' in html
    assert "shapes.mp4" in html and '<strong id="time">0:07</strong>' in html and "of 0:12" in html
    moments = re.findall(r'<li><a href="([^"]+)" data-t="([\d.]+)"', html)
    assert [float(t) for _, t in moments] == [t3, t7]  # in time order
    assert moments[0][0].replace("&amp;", "&") == f"/watch/{sid}?t={t3:g}&hits={f7},{f3},{other}"
    assert html.count('aria-current="true"') == 1
    assert client.get(moments[0][0].replace("&amp;", "&")).status_code == 200


def test_watch_urls_of_search_results_work(client):
    for c in cards(client.get("/?q=green+triangle&k=8").get_data(as_text=True)):
        assert client.get(c["href"]).status_code == 200


def test_watch_page_time_is_clamped_and_checked(client, ids):
    sid = ids["shapes.mp4"]
    assert 'id="time">0:12<' in client.get(f"/watch/{sid}?t=5000").get_data(as_text=True)
    for bad in ["t=abc", "t=-1", "t=nan", "t=inf", "hits=1,x", "hits=" + ",".join(["1"] * 201), "hits=%D9%A1"]:
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
    proxies = Proxies(tmp_path)  # not the app's: other tests' watch pages may have made its proxy already
    monkeypatch.setattr(app.extensions["vidsearch"], "proxies", proxies)
    gate = threading.Event()
    make = proxies._make
    proxies._make = lambda job: (gate.wait(30), make(job))
    try:
        html = client.get(f"/watch/{sid}?t=4").get_data(as_text=True)
        assert "Preparing a browser-playable copy" in html and 'data-state="preparing"' in html
        assert " src=" not in html.split("<video", 1)[1].split(">", 1)[0]
        status = client.get(f"/api/play/{sid}").json
        assert status["state"] == "preparing" and status["proxy"] and status["url"] is None
        r = client.get(f"/play/{sid}")
        assert r.status_code == 503 and r.headers["Retry-After"] == "2"
        gate.set()
        source = index.store.source(sid)
        assert proxies.wait(sid, source["path"], source["duration"], timeout=60).state == "ready"
        assert client.get(f"/api/play/{sid}").json["state"] == "ready"
        [proxy] = (tmp_path / "proxies").glob(f"{sid}-*.mp4")
        r = client.get(f"/play/{sid}", headers={"Range": "bytes=0-99"})
        assert r.status_code == 206 and r.mimetype == "video/mp4"
        assert r.headers["Content-Range"] == f"bytes 0-99/{proxy.stat().st_size}"
        assert f'src="/play/{sid}#t=4"' in client.get(f"/watch/{sid}?t=4").get_data(as_text=True)
        assert client.get(f"/media/{sid}").mimetype == "video/x-msvideo"  # the original is still the original
    finally:
        gate.set()
        proxies.close()


def sampled(path: Path) -> list[tuple[float, tuple]]:
    media = open_media(str(path))
    try:
        return [(round(f.t, 3), tuple(np.round(f.rgb.reshape(-1, 3).mean(0) / 8))) for f in media.frames(0.5)]
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
    proxies = Proxies(tmp_path / "index")
    made = []
    make = proxies._make
    proxies._make = lambda job: (made.append(job.key), make(job))
    try:
        threads = [threading.Thread(target=proxies.playback, args=(7, str(src), 7.0)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        first = proxies.wait(7, str(src), 7.0, timeout=60)
        assert first.state == "ready" and first.proxy and len(made) == 1
        assert proxies.playback(7, str(src), 7.0).file == first.file and len(made) == 1
        os.utime(src, ns=(0, src.stat().st_mtime_ns + 10**9))  # a changed file: a new proxy replaces the old
        assert proxies.playback(7, str(src), 7.0).state == "preparing"
        second = proxies.wait(7, str(src), 7.0, timeout=60)
        assert second.state == "ready" and second.file != first.file and len(made) == 2
        assert sorted(p.name for p in (tmp_path / "index" / "proxies").iterdir()) == [second.file.name]
        # A fresh server finds the proxy on disk.
        assert Proxies(tmp_path / "index").playback(7, str(src), 7.0).file == second.file
    finally:
        proxies.close()


def test_a_broken_video_fails_once_with_a_reason(tmp_path):
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"RIFF" + os.urandom(3000))
    proxies = Proxies(tmp_path / "index")
    try:
        result = proxies.wait(3, str(bad), 1.0, timeout=60)
        assert result.state == "failed" and result.error.startswith("ffmpeg could not convert")
        assert not list((tmp_path / "index" / "proxies").iterdir())  # no part file left
        assert proxies.playback(3, str(tmp_path / "gone.avi"), 1.0).error == "The file is no longer on disk."
    finally:
        proxies.close()


def test_prune_drops_proxies_of_removed_sources_and_dead_parts(tmp_path):
    folder = tmp_path / "proxies"
    folder.mkdir()
    names = ["1-aaaa.mp4", "2-bbbb.mp4", f"1-cccc.mp4.{os.getpid()}.part", "1-dddd.mp4.999999999.part", "notes.txt"]
    for name in names:
        (folder / name).write_bytes(b"x")
    Proxies(tmp_path).prune({1})
    assert sorted(p.name for p in folder.iterdir()) == sorted([names[0], names[2], names[4]])


# -- JSON API --------------------------------------------------------------------------------------------------

HIT_KEYS = {"frame_id", "source_id", "source", "kind", "t", "time", "score", "thumbnail_url", "watch_url", "media_url"}


def test_api_text_search(client, ids):
    r = client.get("/api/search?q=green+triangle&k=5&min_score=-1")
    body = r.json
    assert r.status_code == 200 and body["query"] == {"q": "green triangle", "image": False, "k": 5, "min_score": -1}
    assert body["count"] == len(body["hits"]) == 5
    top = body["hits"][0]
    assert set(top) == HIT_KEYS
    assert top["source"] == "shapes.mp4" and top["kind"] == "video" and 6 <= top["t"] < 9
    assert top["time"] == f"0:0{int(top['t'])}" and top["watch_url"].startswith(f"/watch/{ids['shapes.mp4']}?t=")
    assert [h["score"] for h in body["hits"]] == sorted((h["score"] for h in body["hits"]), reverse=True)
    for h in body["hits"]:
        for key in ("thumbnail_url", "watch_url", "media_url"):
            assert client.get(h[key]).status_code == 200, h[key]
    assert client.get("/api/search?q=green+triangle").json["count"] == 10  # default k, as the CLI's


def test_api_image_search_with_and_without_text(client, ids):
    image = png_bytes(draw("square", "red", (200, 200)))
    r = client.post("/api/search", data={"image": (io.BytesIO(image), "q.png"), "k": "3"})
    assert r.status_code == 200 and r.json["query"]["image"] is True
    assert r.json["hits"][0]["source"] == "red_square.png"
    r = client.post("/api/search", data={"image": (io.BytesIO(image), "q.png"), "q": "red circle"})
    assert r.status_code == 200 and r.json["query"]["q"] == "red circle" and r.json["count"] > 0
    assert client.post("/api/search", data={"q": "red circle"}).json["count"] > 0


def test_api_info(client, index):
    info = client.get("/api/info").json
    assert info["sources"] == 5 and info["videos"] == 2 and info["images"] == 3 and info["frames"] > 20
    assert info["model"] == index.model and info["max_upload_bytes"] == DEFAULT_MAX_UPLOAD == 20 * 1024 * 1024


@pytest.mark.parametrize("query", ["", "?q=", "?q=%20", "?q=x&k=0", "?q=x&k=201", "?q=x&k=abc", "?q=x&k=1.5",
                                   "?q=x&min_score=2", "?q=x&min_score=nan", "?q=x&min_score=abc",
                                   "?q=x&min_score=-inf", "?q=" + "x" * 1001])
def test_api_bad_queries_are_400_with_a_message(client, query):
    r = client.get("/api/search" + query)
    assert r.status_code == 400 and r.mimetype == "application/json" and r.json["error"]


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
    try:
        client = app.test_client()
        r = post_image(client, png_bytes(np.random.default_rng(0).integers(0, 255, (100, 100, 3), np.uint8)))
        assert r.status_code == 413 and "1000 B" in r.json["error"]
        assert post_image(client, png_bytes(np.zeros((8, 8, 3), np.uint8))).status_code == 200
    finally:
        app.extensions["vidsearch"].proxies.close()


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
        app.extensions["vidsearch"].proxies.close()
        idx.close()


@pytest.mark.parametrize("url", ["/?q=%00", "/?q=%ff%fe", "/?q=a&q=b", "/?k=", "/?q=x&k=%D9%A1", "/?q=x&k=1e400",
                                 "/?q=x&min_score=1e400", "/static/../app.py", "/static/%2e%2e/app.py", "/nothing",
                                 "/api/search?q=%00", "/watch/1?t=1e400", "/watch/1?hits=,,,", "/?q=" + "é" * 999])
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

        def run(self):
            served["ran"] = True

    def create_server(app, **kwargs):
        served.update(kwargs, client=app.test_client())
        return FakeServer()

    monkeypatch.setattr(waitress, "create_server", create_server)
    monkeypatch.setattr(signal, "signal", lambda *args: None)  # serve's SIGTERM handler: not in pytest's process
    index_dir = tmp_path / "index"
    runner = CliRunner()
    result = runner.invoke(main, ["serve", str(library / "red_square.png"), "--index", str(index_dir),
                                  "--model", tiny_model, "--port", "0"])
    assert result.exit_code == 0, result.output
    assert "1 sources indexed" in result.output and "http://127.0.0.1:8123/" in result.output
    assert served["ran"] and served["host"] == "127.0.0.1" and served["port"] == 0
    assert served["client"].get("/api/search?q=red+square").json["hits"][0]["source"] == "red_square.png"
    result = runner.invoke(main, ["serve", "--index", str(index_dir)])  # no paths: the index as it is
    assert result.exit_code == 0 and "indexed" not in result.output and "Serving 1 sources" in result.output
    result = runner.invoke(main, ["serve", "--index", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no vidsearch index" in result.output
