"""What another site's page can do with a server on this machine: nothing. Requests for a host name the server is not
reached by are 400 (DNS rebinding), other sites' requests for media, the API and uploads are 403 (only a plain link
to a page is followed), and what uploads leave in memory stays within a bound in bytes whatever their shapes."""
from __future__ import annotations

import contextlib
import http.client
import http.server
import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator

import numpy as np
import pytest
from browsers import ARGS, CHROMIUM, serving
from flask import request
from test_web import png_bytes, png_header

from vidsearch.web import create_app
from vidsearch.web.queries import MAX_ASPECT
from vidsearch.web.state import RecentImages

EVIL = "attacker.example"


@pytest.fixture(scope="module")
def index(small_index):
    return small_index


@pytest.fixture(scope="module")
def app(index):
    return create_app(index)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def urls(app):
    """Every kind of route: pages, media by id, a clip, the API."""
    index = app.extensions["vidsearch"].index
    vid = next(s.id for s in index.sources() if s.kind == "video")
    photo = next(s.id for s in index.sources() if s.kind == "image")
    frame = index.frames(vid)[0][0]
    return {"page": "/?q=a+red+circle", "watch": f"/watch/{vid}?q=a+circle", "media": f"/media/{vid}",
            "image": f"/image/{photo}", "thumb": f"/thumb/{frame}", "play": f"/play/{vid}",
            "clip": f"/clip/{vid}?start=0&end=1", "search api": "/api/search?q=a+red+circle", "info api": "/api/info",
            "play api": f"/api/play/{vid}"}


def upload(client, data: bytes, url: str = "/api/search", headers=None):
    return client.post(url, data={"image": (io.BytesIO(data), "upload.png")}, content_type="multipart/form-data",
                       headers=headers or {})


# -- host names ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("host", [EVIL, f"{EVIL}:8000", "localhost.attacker.example", "127.0.0.1.nip.io",
                                  "10.0.0.1", "[fe80::1]:8000", "local host", "évil.example"])
def test_a_host_the_server_is_not_reached_by_is_400_with_a_sentence(client, urls, host):
    for name, url in urls.items():
        r = client.get(url, headers={"Host": host})
        assert r.status_code == 400, (name, host)
        text = r.get_json()["error"] if "/api/" in url else r.get_data(as_text=True)
        assert "This server does not answer to" in text and "--allow-host" in text, name
    assert upload(client, png_bytes(np.zeros((8, 8, 3), np.uint8)), headers={"Host": host}).status_code == 400


@pytest.mark.parametrize("host", ["localhost", "localhost:8000", "LOCALHOST:8000", "127.0.0.1", "127.0.0.1:8000",
                                  "127.45.6.7:1234", "[::1]", "[::1]:8000"])
def test_loopback_hosts_are_answered(client, urls, host):
    for name, url in urls.items():
        assert client.get(url, headers={"Host": host}).status_code < 400, (name, host)


def test_allowed_names_and_addresses_are_answered(index):
    client = create_app(index, hosts=["nas.lan", ".home.arpa", "192.168.1.5", "[fd00::5]"]).test_client()
    for host in ["nas.lan", "NAS.lan:8000", "vid.home.arpa", "home.arpa:80", "192.168.1.5:8000", "[fd00::5]:80",
                 "localhost:8000", "127.0.0.1"]:
        assert client.get("/api/info", headers={"Host": host}).status_code == 200, host
    for host in ["nas.lan.attacker.example", "evil.lan", "homearpa", "192.168.1.6", "[fd00::6]", EVIL]:
        assert client.get("/api/info", headers={"Host": host}).status_code == 400, host


def test_listening_on_every_address_allows_addresses_not_other_names(index):
    client = create_app(index, hosts=["0.0.0.0", "myserver"]).test_client()
    for host in ["10.1.2.3:8000", "192.168.1.7", "[fe80::1]:8000", "myserver:8000", "localhost"]:
        assert client.get("/api/info", headers={"Host": host}).status_code == 200, host
    for host in [EVIL, "myserver.attacker.example"]:
        assert client.get("/api/info", headers={"Host": host}).status_code == 400, host


def test_vidsearch_serve_refuses_a_foreign_host(index):
    proc = subprocess.Popen([sys.executable, "-m", "vidsearch.cli", "serve", "--index", str(index.path), "--port",
                             "0", "--allow-host", "nas.lan"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        port = next((line.split(":")[2].split("/")[0] for line in proc.stdout if line.startswith("Open http://")),
                    None)  # the loop ends when the server exits, so a failed start cannot hang the test
        assert port, proc.stderr.read()
        for host, status in [(EVIL, 400), (f"127.0.0.1:{port}", 200), (f"localhost:{port}", 200),
                             (f"nas.lan:{port}", 200)]:
            conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=60)
            conn.request("GET", "/api/search?q=a+red+circle", headers={"Host": host})
            r = conn.getresponse()
            body = r.read().decode()
            conn.close()
            assert r.status == status, host
            assert ("does not answer to" in body) == (status == 400)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_takes_names_to_allow(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from vidsearch.cli import _served_names, main

    runner = CliRunner()
    assert "--allow-host" in runner.invoke(main, ["serve", "--help"]).output
    r = runner.invoke(main, ["serve", "--index", str(tmp_path / "none"), "--allow-host", "http://nas.lan:8000/"])
    assert r.exit_code == 2 and "--allow-host takes a host name" in r.output
    monkeypatch.setattr("socket.gethostname", lambda: "MyBox")
    assert _served_names("127.0.0.1", ("nas.lan",)) == ["127.0.0.1", "nas.lan"]
    assert _served_names("0.0.0.0", ()) == ["0.0.0.0", "mybox", "mybox.local"]


# -- other sites -----------------------------------------------------------------------------------------------

SUBRESOURCE = {"Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}


@pytest.mark.parametrize("headers", [
    pytest.param({"Sec-Fetch-Site": "cross-site", **SUBRESOURCE}, id="img-on-another-site"),
    pytest.param({"Sec-Fetch-Site": "same-site", **SUBRESOURCE}, id="img-on-another-port"),
    pytest.param({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors", "Origin": f"http://{EVIL}"}, id="fetch"),
    pytest.param({"Origin": f"http://{EVIL}"}, id="origin-only"),
    pytest.param({"Origin": "http://localhost:3000"}, id="origin-another-port"),
    pytest.param({"Origin": "null"}, id="origin-null"),
])
def test_other_sites_requests_are_403_with_a_sentence(client, urls, headers):
    for name, url in urls.items():
        r = client.get(url, headers=headers)
        assert r.status_code == 403, name
        text = r.get_json()["error"] if "/api/" in url else r.get_data(as_text=True)
        assert "page cannot use this server" in text, name
    assert client.get("/static/style.css", headers=headers).status_code == 200


def test_a_link_from_another_site_opens_a_page_but_nothing_else(client, urls):
    link = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    for name in ("page", "watch"):
        assert client.get(urls[name], headers=link).status_code == 200, name
    for name in ("media", "clip", "thumb", "search api"):
        assert client.get(urls[name], headers=link).status_code == 403, name
    framed = {**link, "Sec-Fetch-Dest": "iframe"}
    assert client.get(urls["page"], headers=framed).status_code == 403


def test_same_origin_bookmarks_and_programs_are_answered(client, urls):
    own = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
    bookmark = {"Sec-Fetch-Site": "none", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    for name, url in urls.items():
        for headers in (own, bookmark, {}, {"Origin": "http://localhost"}):
            assert client.get(url, headers=headers).status_code < 400, (name, headers)


@pytest.mark.parametrize("url", ["/", "/api/search"])
def test_an_upload_from_another_site_is_403_and_from_the_page_200(client, url):
    data = png_bytes(np.zeros((8, 8, 3), np.uint8))
    form_post = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document",
                 "Origin": f"http://{EVIL}"}
    assert upload(client, data, url, form_post).status_code == 403
    assert upload(client, data, url, {"Origin": f"http://{EVIL}"}).status_code == 403
    own = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate", "Origin": "http://localhost"}
    assert upload(client, data, url, own).status_code == 200
    assert upload(client, data, url).status_code == 200


def test_with_a_token_other_sites_get_403_and_the_token_link_still_works(index):
    client = create_app(index, auth="tok").test_client()
    img = {"Sec-Fetch-Site": "cross-site", **SUBRESOURCE}
    assert client.get("/thumb/1", headers=img).status_code == 403
    assert client.get("/?token=tok", headers={"Sec-Fetch-Site": "none"}).status_code == 303
    assert client.get("/api/info", headers={"Host": EVIL, "Authorization": "Bearer tok"}).status_code == 400


# -- what uploads leave in memory ------------------------------------------------------------------------------

@pytest.mark.parametrize("width, height", [(300, 200_000), (200_000, 300), (1, 100_000), (100_000, 1), (1, 21),
                                           (100_000, 100_000), (10_000, 10_000)])
@pytest.mark.parametrize("url", ["/api/search", "/"])
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_hostile_shapes_are_400_before_they_are_decoded(client, url, width, height):
    r = upload(client, png_header(width, height), url)  # the header alone: decoding it would say "damaged"
    assert r.status_code == 400
    text = r.get_json()["error"] if url == "/api/search" else r.get_data(as_text=True)
    assert "too long and narrow" in text or "too many pixels" in text


def test_what_uploads_keep_stays_within_its_bytes_whatever_the_shapes(app, client):
    store = app.extensions["vidsearch"].images = RecentImages(size=64, max_bytes=3_000_000)
    side = app.extensions["vidsearch"].index.embedder.decode_side
    shapes = [(20, 1), (1, 20), (3000, 150), (150, 3000), (side, side * MAX_ASPECT), (640, 480), (2, 2),
              (300, 200_000), (1, 100_000)]
    kept = []
    for round_ in range(3):
        for w, h in shapes:
            hostile = max(w, h) > MAX_ASPECT * min(w, h)
            r = upload(client, png_header(w, h) if hostile else png_bytes(np.full((h, w, 3), 40 * round_, np.uint8)))
            if hostile:
                assert r.status_code == 400
                continue
            assert r.status_code == 200, (w, h)
            kept.append(r.get_json()["query"]["qimg"])
            arrays = [a for a in map(store.get, kept) if a is not None]
            assert store.bytes == sum(a.nbytes for a in arrays) <= store.max_bytes
            assert all(min(a.shape[:2]) <= side and max(a.shape[:2]) <= side * MAX_ASPECT for a in arrays)
    assert store.get(kept[0]) is None and store.get(kept[-1]) is not None  # the oldest went first


def test_an_image_larger_than_the_whole_bound_is_not_kept():
    store = RecentImages(size=4, max_bytes=1000)
    small = store.put(np.zeros((10, 10, 3), np.uint8))
    big = store.put(np.zeros((20, 20, 3), np.uint8))
    assert store.get(big) is None and store.get(small) is not None and store.bytes == 300


# -- in a real browser -----------------------------------------------------------------------------------------

@contextlib.contextmanager
def other_site(html: str) -> Iterator[int]:
    """Another site on this machine (Chromium lets only local pages reach loopback servers): its port."""
    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
def test_in_chromium_a_rebound_name_and_another_sites_page_get_nothing(index, urls):
    from playwright.sync_api import sync_playwright

    app = create_app(index)
    seen = []  # (path, status) of every request the server answered
    app.after_request(lambda r: seen.append((request.path, r.status_code)) or r)
    # The attacker's names resolve to this machine, as DNS rebinding makes them.
    rules = f"--host-resolver-rules=MAP {EVIL} 127.0.0.1, MAP other.example 127.0.0.1"
    with serving(app) as base, sync_playwright() as p:
        evil_page = (f'<img src="{base}{urls["thumb"]}"><img src="{base}{urls["clip"]}">'
                     f'<form method="post" action="{base}/" enctype="multipart/form-data"><input name="q"></form>')
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, rules])
        page = browser.new_page()
        r = page.goto(f"http://{EVIL}:{base.rsplit(':', 1)[1]}/api/search?q=a+red+circle")
        assert r.status == 400 and "does not answer to" in page.content()
        with other_site(evil_page) as port:
            page.goto(f"http://other.example:{port}/")
            page.wait_for_function("() => [...document.images].every(img => img.complete)")
            assert page.evaluate("[...document.images].map(img => img.naturalWidth)") == [0, 0]
            with page.expect_navigation():
                page.evaluate("document.forms[0].submit()")
            assert "page cannot use this server" in page.content()
        page.goto(base + urls["page"])  # the server's own page: its thumbnails load
        page.wait_for_function("() => [...document.images].every(img => img.complete && img.naturalWidth > 0)")
        browser.close()
    thumb, clip = urls["thumb"], urls["clip"].split("?")[0]
    assert (thumb, 403) in seen and (clip, 403) in seen and ("/", 403) in seen  # refused by the server itself
    assert any(path.startswith("/thumb/") and status == 200 for path, status in seen)
