"""Finding moments by the words on screen (--ocr): generated videos with words drawn at known times in several
fonts, sizes, colours and backgrounds, read with RapidOCR, ranked together with CLIP."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from browsers import checked_page, chromium, serving
from click.testing import CliRunner
from media import draw, encode
from PIL import Image, ImageDraw, ImageFont

import vidsearch
import vidsearch.ocr
from vidsearch.catalog import CATALOG
from vidsearch.cli import main
from vidsearch.errors import IndexMismatch
from vidsearch.ocr import match_expression, query_terms
from vidsearch.web import create_app

pytest.importorskip("rapidocr")

FONTS = Path("/usr/share/fonts/truetype/dejavu")
SIZE = (640, 360)
FPS = 5
# (seconds, text or None, font file, size in pixels, text colour, background colour), in order.
LECTURE = [(2, "Welcome everyone", "DejaVuSans.ttf", 40, (0, 0, 0), (255, 255, 255)),
           (2, "Quarterly revenue grew", "DejaVuSerif-Bold.ttf", 36, (20, 30, 120), (250, 240, 180)),
           (2, "Café Déjà Vu", "DejaVuSansMono.ttf", 44, (255, 255, 255), (0, 0, 0)),
           (2, None, None, 0, None, None)]  # a red circle, no text
NEWS = [(2, "Breaking weather alert", "DejaVuSans-Bold.ttf", 30, (250, 220, 0), (10, 30, 90)),
        (2, "revenue quarterly forecast", "DejaVuSerif.ttf", 32, (0, 90, 0), (230, 230, 230)),
        (2, "Harbour bridge closed", "DejaVuSans.ttf", 26, (200, 20, 20), (128, 128, 128))]


def font(name: str, size: int) -> ImageFont.ImageFont:
    path = FONTS / name
    return ImageFont.truetype(str(path), size) if path.is_file() else ImageFont.load_default(size)


def slide(text, font_name, size, colour, background) -> np.ndarray:
    if text is None:
        return draw("circle", "red", SIZE)
    im = Image.new("RGB", SIZE, background)
    ImageDraw.Draw(im).text((40, 150), text, font=font(font_name, size), fill=colour)
    return np.asarray(im)


def slides_video(path: Path, plan) -> Path:
    frames = []
    for seconds, *look in plan:
        frames += [slide(*look)] * (seconds * FPS)
    return encode(path, frames, FPS, SIZE)


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    lib = tmp_path_factory.mktemp("ocr") / "library"
    slides_video(lib / "lecture.mp4", LECTURE)
    slides_video(lib / "news.mp4", NEWS)
    return lib


@pytest.fixture(scope="module")
def indexed(tmp_path_factory, tiny_model, library):
    """lecture.mp4 indexed without text, then the library with --ocr: lecture's text is read then (backfill) and
    news.mp4 is indexed reading its text. (index, the second run's report)"""
    idx = vidsearch.Index(tmp_path_factory.mktemp("ocr") / "index", model=tiny_model)
    first = idx.add([library / "lecture.mp4"])
    assert not idx.reads_text and first.frames_added == 8
    yield idx, idx.add([library], ocr=True)
    idx.close()


@pytest.fixture(scope="module")
def index(indexed):
    return indexed[0]


def top(idx, text: str, **kw):
    return idx.search(text, min_score=-1, per_video=0, **kw)


def test_switching_an_index_to_ocr_reads_what_it_holds_and_what_it_adds(indexed):
    index, report = indexed
    assert report.text_read == 1 and [os.path.basename(p) for p in report.added] == ["news.mp4"]
    assert index.reads_text and vidsearch.Index(index.path).reads_text  # kept for later runs
    stats = index.stats()
    assert stats.reads_text and stats.frames_with_words == 12  # 6 slides with text, 2 samples each


@pytest.mark.parametrize("query, source, start", [
    ("harbour", "news.mp4", 4.0), ("Breaking weather", "news.mp4", 0.0), ("welcome", "lecture.mp4", 0.0),
    ("cafe deja vu", "lecture.mp4", 4.0), ("CAFÉ", "lecture.mp4", 4.0)])
def test_a_word_query_finds_its_moment_first(index, query, source, start):
    best = top(index, query)[0]
    assert (os.path.basename(best.source), best.start) == (source, start)
    assert best.end == start + 2 and best.words  # the whole slide, merged into one moment
    assert all(0 <= v <= 1 for w in best.words for v in w["box"])


def test_words_rank_above_frames_that_only_look_related(index):
    hits = top(index, "a red circle")  # the tiny model knows red circles; no frame shows these words
    assert not any(h.words for h in hits)
    hits = top(index, "revenue")
    assert {os.path.basename(h.source) for h in hits[:2]} == {"lecture.mp4", "news.mp4"}
    assert all(h.words for h in hits[:2]) and not any(h.words for h in hits[2:])


def test_a_quoted_phrase_matches_exactly(index):
    assert len([h for h in top(index, "quarterly revenue") if h.words]) == 2  # both orders
    hits = [h for h in top(index, 'the slide that says "quarterly revenue"') if h.words]
    assert [(os.path.basename(h.source), h.start) for h in hits] == [("lecture.mp4", 2.0)]
    assert "Quarterly revenue" in hits[0].words[0]["text"]


@pytest.mark.parametrize("text", ['a OR "b', "*", '"', 'NEAR(a b', "^x", "revenue AND", '""', "col:x", "-"])
def test_queries_are_never_fts_syntax(index, text):
    top(index, text)  # no error


def test_terms_and_expressions():
    assert query_terms('the slide "Quarterly  Revenue" and "Déjà"') == [["quarterly", "revenue"], ["deja"]]
    assert query_terms('a OR "b') == [["a"], ["or"], ["b"]]  # an unclosed quote is no phrase
    assert match_expression(query_terms('x "y" NEAR(z)*')) == '"y"'
    assert match_expression(query_terms("*")) is None


def test_only_changed_samples_are_read_and_a_frame_that_fails_is_skipped(tmp_path, tiny_model, library,
                                                                         monkeypatch):
    calls = []
    read = vidsearch.ocr.Reader.read

    def failing_first(self, rgb):
        calls.append(rgb.shape)
        if len(calls) == 1:
            raise RuntimeError("a broken frame")
        return read(self, rgb)

    monkeypatch.setattr(vidsearch.ocr.Reader, "read", failing_first)
    with vidsearch.Index(tmp_path / "index", model=tiny_model) as idx:
        report = idx.add([library / "news.mp4"], ocr=True)
        assert len(report.added) == 1 and not report.skipped
        assert calls == [(360, 640, 3)] * 3  # one read per slide, at the video's own size
        assert not [h for h in top(idx, "breaking") if h.words]  # the slide whose read failed has no words
        assert [h for h in top(idx, "harbour") if h.words]


def test_the_player_gets_the_words_of_its_moments(index):
    news = next(s for s in index.sources() if s.path.endswith("news.mp4"))
    _, moments = index.video(news.id, "harbour", min_score=-1)
    assert moments[0].start == 4.0 and "Harbour" in moments[0].words[0]["text"]


def test_the_json_api_and_info(index):
    client = create_app(index).test_client()
    hits = client.get("/api/search?q=harbour&min_score=-1").get_json()["hits"]
    assert hits[0]["source"] == "news.mp4" and hits[0]["words"][0]["text"].startswith("Harbour")
    x0, y0, x1, y1 = hits[0]["words"][0]["box"]
    assert 0 <= x0 < x1 <= 1 and 0.3 < y0 < y1 < 0.7  # drawn at y = 150 of 360
    info = client.get("/api/info").get_json()
    assert info["reads_text"] and info["frames_with_words"] > 0


def test_words_go_with_their_source(tmp_path, index, library):
    copy = tmp_path / "index"
    shutil.copytree(index.path, copy)
    with vidsearch.Index(copy) as idx:
        news = next(s for s in idx.sources() if s.path.endswith("news.mp4"))
        before = _count(copy, "words_fts")
        assert idx.remove(news.path)
        assert not [h for h in top(idx, "harbour") if h.words]
    assert 0 < _count(copy, "words_fts") < before
    assert _count(copy, "words_fts") == _count(copy, "frame_words")
    assert _count(copy, "text_read") == 1


def test_a_byte_copy_shares_the_words_and_keeps_them_when_the_original_goes(tmp_path, index, library):
    lib, root = _copied(index, library, tmp_path)
    (lib / "backup").mkdir()
    shutil.copy2(lib / "news.mp4", lib / "backup" / "news.mp4")
    with vidsearch.Index(root) as idx:
        report = idx.add([lib])
        assert report.copies == [(str(lib / "backup" / "news.mp4"), str(lib / "news.mp4"))] and not report.added
        best = top(idx, "harbour")[0]
        assert best.words and best.also == [str(lib / "backup" / "news.mp4")]
        (lib / "news.mp4").unlink()
        idx.add([lib])
        best = top(idx, "harbour")[0]
        assert (best.source, best.start, best.also) == (str(lib / "backup" / "news.mp4"), 4.0, [])
        assert best.words and "Harbour" in best.words[0]["text"]


def _copied(index, library: Path, where: Path) -> tuple[Path, Path]:
    """A copy of the library and of its index, the index knowing the copied library's paths."""
    lib, root = where / "library", where / "index"
    shutil.copytree(library, lib)
    shutil.copytree(index.path, root)
    with sqlite3.connect(root / CATALOG) as db:
        db.execute("UPDATE sources SET path = replace(path, ?, ?)", (str(library), str(lib)))
    return lib, root


def _count(root: Path, table: str) -> int:
    with sqlite3.connect(root / CATALOG) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_an_index_without_ocr_behaves_as_before(small_index):
    assert not small_index.reads_text and not small_index.stats().frames_with_words
    hits = small_index.search("a red circle", min_score=-1)
    assert hits and all("words" not in h.as_json() for h in hits)


def test_a_format_4_index_is_upgraded(tmp_path, small_index):
    copy = tmp_path / "index"
    shutil.copytree(small_index.path, copy)
    with sqlite3.connect(copy / CATALOG) as db:
        for statement in ("DROP TRIGGER frame_words_gone", "DROP TABLE frame_words", "DROP TABLE words_fts",
                          "DROP TABLE text_read", "UPDATE meta SET value='4' WHERE key='format_version'"):
            db.execute(statement)
    with vidsearch.Index(copy) as idx:
        assert idx._opened.catalog.meta["format_version"] == 8 and not idx.reads_text
        assert idx.search("a red circle", min_score=-1)
        assert len(idx._opened.catalog.text_unread()) == len(idx.sources())


def test_ray_refuses_ocr_in_one_sentence(small_index, index):
    with pytest.raises(IndexMismatch, match="not on Ray workers"):
        small_index.add([], ray=True, ocr=True)
    with pytest.raises(IndexMismatch, match="this index reads text"):
        index.add([], ray=True)
    assert not small_index.reads_text



def test_no_ocr_stops_reading_and_keeps_the_words_read(tmp_path, index, library):
    lib, root = _copied(index, library, tmp_path)
    slides_video(lib / "later.mp4", [(2, "Ferry timetable", "DejaVuSans.ttf", 36, (0, 0, 0), (255, 255, 255))])
    out = CliRunner().invoke(main, ["index", "--no-ocr", str(lib), "--index", str(root)])
    assert out.exit_code == 0, out.output
    with vidsearch.Index(root) as idx:
        assert not idx.reads_text and idx.stats().frames_with_words == 12  # later.mp4 not read
        assert top(idx, "harbour")[0].words and not top(idx, "ferry timetable")[0].words
        assert "not read" in CliRunner().invoke(main, ["info", "--index", str(root)]).output
        report = idx.add([lib], ocr=True)  # on again: what was indexed meanwhile is read
        assert report.text_read == 1 and idx.reads_text
        best = top(idx, "ferry timetable")[0]
        assert os.path.basename(best.source) == "later.mp4" and best.words

def test_serve_ocr_needs_paths(index):
    out = CliRunner().invoke(main, ["serve", "--ocr", "--index", str(index.path)])
    assert out.exit_code == 2 and "--ocr goes with the folders to index" in out.output


def test_without_rapidocr_the_cli_says_how_to_install_it(tmp_path, library):
    blocker = tmp_path / "blocker" / "rapidocr"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('blocked for the test')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker.parent), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "vidsearch.cli", "index", "--ocr", str(library), "--index",
                          str(tmp_path / "index")], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "pip install 'vidsearch[ocr]'" in out.stderr and out.stderr.count("\n") == 1
    assert not (tmp_path / "index").exists()


def test_cli_search_and_info_show_the_words(index):
    runner = CliRunner()
    out = runner.invoke(main, ["search", "harbour", "--index", str(index.path), "--min-score", "-1"])
    assert out.exit_code == 0 and "on screen: Harbour" in out.output
    out = runner.invoke(main, ["info", "--index", str(index.path)])
    assert "read in frames (--ocr)" in out.output
    hits = json.loads(runner.invoke(main, ["search", "harbour", "--index", str(index.path), "--json"]).output)
    assert hits[0]["words"]


def test_the_card_shows_the_words_and_the_player_their_boxes(index):
    with serving(create_app(index)) as base, chromium() as browser, \
            checked_page(browser) as page:
        page.goto(f"{base}/?q=harbour&min_score=-1")
        card = page.locator(".card").first
        assert "Harbour bridge closed" in card.locator(".words").inner_text()
        card.locator("a.open").click()
        page.wait_for_function("() => document.getElementById('player').readyState >= 1")
        page.evaluate("() => { const v = document.getElementById('player'); v.pause(); v.currentTime = 4.5; }")
        page.wait_for_selector(".word-boxes:not([hidden]) .word-box")
        box, video = page.locator(".word-box").first.bounding_box(), page.locator("video").bounding_box()
        # drawn where the words are: left part of the picture, around the middle of its height
        assert video["x"] <= box["x"] < video["x"] + video["width"] / 2 and box["width"] > 0.2 * video["width"]
        assert video["y"] + 0.3 * video["height"] < box["y"] < video["y"] + 0.7 * video["height"]
        page.click("#show-words")
        assert page.locator(".word-boxes").is_hidden()
        page.evaluate("() => { document.getElementById('player').currentTime = 0.5; }")
        page.click("#show-words")
        page.wait_for_function("() => document.getElementById('word-boxes').hidden")  # no match at 0.5 s
