"""The web UI in a real browser (headless Chromium through Playwright), against the app served by waitress."""
from __future__ import annotations

import io
import os

import pytest
from browsers import CHROMIUM, checked_page, chromium, serving
from media import draw
from PIL import Image
from test_web import build_library

from vidsearch.index import Index
from vidsearch.web import create_app

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")

# Where playback really started: media events do not bubble, but a capturing listener on the document sees them.
RECORD_PLAYING = """
document.addEventListener('playing', e => {
  if (window.firstPlaying === undefined) window.firstPlaying = e.target.currentTime;
}, true);
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory, shapes_video, tiny_model):
    root = tmp_path_factory.mktemp("browser")
    index = Index(root / "index", model=tiny_model)
    # Every sample embedded: with reuse, a still segment's samples share one vector and its best frame is its first.
    index.add([build_library(root / "library", shapes_video[0])], reuse=False)
    with serving(create_app(index)) as url:
        yield url
    index.close()


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser):
    with checked_page(browser) as page:
        yield page


def search(page, server: str, text: str) -> None:
    page.goto(server)
    page.fill("input[name=q]", text)
    page.press("input[name=q]", "Enter")
    page.wait_for_selector(".card")
    # The thumbnails really load (not broken images).
    page.wait_for_function("() => [...document.querySelectorAll('.card img')].slice(0, 4)"
                           ".every(img => img.complete && img.naturalWidth > 0)")


def open_first_video_hit(page, source: str) -> float:
    """Opens the first moment of `source` in the results; returns the moment's start."""
    card = page.locator(f".card[data-kind=video]:has(.name:text-is('{source}'))").first
    start = float(card.get_attribute("data-start"))
    card.locator("a.open").click()
    page.wait_for_url("**/watch/**")
    return start


def assert_plays_from(page, t: float) -> None:
    page.wait_for_function("() => window.firstPlaying !== undefined", timeout=60_000)
    started = page.evaluate("window.firstPlaying")
    assert abs(started - t) < 0.5, (started, t)
    assert_playing(page, started)


def assert_playing(page, since: float) -> None:
    page.wait_for_function("s => { const v = document.querySelector('video'); "
                           "return !v.paused && v.currentTime > s + 0.3; }", arg=since)


def test_text_search_then_the_player_starts_at_the_moments_start(page, server):
    page.add_init_script(RECORD_PLAYING)
    search(page, server, "something blue")  # its best frame is not its moment's first (checked below)
    # H.264/AAC in MP4, the proxies' format, is what this Chromium plays (Debian builds it with those codecs).
    h264 = 'video/mp4; codecs="avc1.42E01E, mp4a.40.2"'
    assert page.evaluate("type => document.createElement('video').canPlayType(type)", h264) == "probably"
    assert page.url.endswith("/?q=something+blue")  # a GET without the default settings: a short bookmark
    card = page.locator(".card[data-kind=video]").first
    assert float(card.get_attribute("data-t")) > float(card.get_attribute("data-start"))  # so the test tells them apart
    start = open_first_video_hit(page, "shapes.mp4")
    assert start == 3
    assert_plays_from(page, start)
    assert page.locator("h1").inner_text() == "shapes.mp4"
    assert page.locator(".moments a[aria-current]").count() == 1
    assert page.locator(".timeline .mark[aria-current]").count() == 1


def test_a_video_browsers_cannot_play_is_prepared_then_plays_at_the_moment(page, server):
    page.add_init_script(RECORD_PLAYING)
    search(page, server, "a purple square")
    start = open_first_video_hit(page, "clip.avi")
    assert start == 3
    assert_plays_from(page, start)
    source_id = page.url.split("/watch/")[1].split("?")[0]
    assert page.evaluate("document.querySelector('video').currentSrc").split("#")[0].endswith(f"/play/{source_id}")
    assert page.locator("#notice").count() == 0


def test_the_timeline_and_the_moments_list_seek_in_place(page, server):
    search(page, server, "a circle")
    open_first_video_hit(page, "shapes.mp4")
    page.wait_for_function("() => !document.querySelector('video').paused")
    page.evaluate("window.samePage = true")  # gone if a click loads a page instead of seeking
    marks = page.locator(".timeline .mark")
    assert marks.count() == 2 and page.locator(".moments a").count() == 2
    for i in (1, 0):
        mark = marks.nth(i)
        t = float(mark.get_attribute("data-t"))
        mark.click()
        page.wait_for_function("t => Math.abs(document.querySelector('video').currentTime - t) < 0.5", arg=t)
        assert_playing(page, t)
        assert mark.get_attribute("aria-current") == "true" and f"t={t:g}&" in page.url
        assert page.locator(f".moments a[data-t='{t:g}']").get_attribute("aria-current") == "true"
    last = page.locator(".moments a").nth(1)
    t = float(last.get_attribute("data-t"))
    last.click()
    page.wait_for_function("t => Math.abs(document.querySelector('video').currentTime - t) < 0.5", arg=t)
    assert page.evaluate("window.samePage") is True


def upload_png(shape: str, colour: str) -> dict:
    buf = io.BytesIO()
    Image.fromarray(draw(shape, colour)).save(buf, "PNG")
    return {"name": f"{colour}_{shape}.png", "mimeType": "image/png", "buffer": buf.getvalue()}


def test_image_search_with_the_file_picker(page, server):
    page.goto(server)
    page.set_input_files("input[type=file]", upload_png("square", "purple"))  # submits by itself
    page.wait_for_selector(".card")
    assert page.locator(".query-image").count() == 1
    assert page.locator(".card .name").first.inner_text() == "clip.avi"
    open_first_video_hit(page, "clip.avi")  # its watch page redoes the image query, without the upload
    assert page.locator(".timeline .mark").count() >= 1


def test_image_search_by_drag_and_drop(page, server):
    page.goto(server)
    data = upload_png("square", "red")
    page.evaluate("""([name, bytes]) => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], name, { type: 'image/png' }));
        const target = document.querySelector('.drop');
        for (const type of ['dragenter', 'dragover', 'drop'])
            target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
    }""", [data["name"], list(data["buffer"])])
    page.wait_for_selector(".card")
    assert page.locator(".card .name").first.inner_text() == "red_square.png"


def test_the_pages_fit_a_phone(browser, server):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(server + "/?q=a+green+triangle")
        page.wait_for_selector(".card")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        columns = page.evaluate("getComputedStyle(document.querySelector('.grid')).gridTemplateColumns")
        assert len(columns.split()) == 2
        page.locator(".card[data-kind=video] a.open").first.click()
        page.wait_for_url("**/watch/**")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        assert page.evaluate("document.querySelector('video').getBoundingClientRect().width") >= 370
    finally:
        context.close()
