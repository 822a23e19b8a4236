"""Copies shown once: byte copies indexed once and named in `also`; another encoding of a video merged in a search."""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from browsers import CHROMIUM, checked_page, chromium, serving
from click.testing import CliRunner
from media import FFMPEG, segments_video

from vidsearch.catalog import CATALOG, SCHEMA_VERSION
from vidsearch.cli import main
from vidsearch.index import Index
from vidsearch.web import create_app

RED_THEN_BLUE = [(3, "circle", "red"), (3, "square", "blue")]
RED_THEN_GREEN = [(3, "circle", "red"), (3, "triangle", "green")]  # the same first half: a different video


@pytest.fixture(scope="module")
def stock(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("stock")
    clip = segments_video(folder / "clip.mp4", RED_THEN_BLUE)
    mpg = folder / "clip.mpg"  # the same video as MPEG-2 in an MPEG program stream
    subprocess.run([FFMPEG, "-loglevel", "error", "-i", str(clip), "-c:v", "mpeg2video", "-q:v", "4", str(mpg)],
                   check=True)
    return {"clip": clip, "mpg": mpg, "other": segments_video(folder / "other.mp4", RED_THEN_GREEN)}


@pytest.fixture
def library(tmp_path, stock) -> Path:
    """a/clip.mp4, indexed first, and its byte copy backup/clip.mp4, added later by the tests that want it."""
    (tmp_path / "lib" / "a").mkdir(parents=True)
    shutil.copy2(stock["clip"], tmp_path / "lib" / "a" / "clip.mp4")
    return tmp_path / "lib"


def indexed(tmp_path: Path, library: Path, tiny_model: str) -> Index:
    idx = Index(tmp_path / "index", model=tiny_model)
    idx.add([library], reuse=False)
    return idx


def add_copy(library: Path) -> Path:
    copy = library / "backup" / "clip.mp4"
    copy.parent.mkdir(exist_ok=True)
    shutil.copy2(library / "a" / "clip.mp4", copy)
    return copy


def api_hits(idx: Index, q: str = "a red circle", **params) -> list[dict]:
    res = create_app(idx).test_client().get("/api/search", query_string={"q": q, "min_score": -1, **params})
    assert res.status_code == 200, res.get_data(as_text=True)
    return res.get_json()["hits"]


def test_byte_copy_is_recorded_without_decoding_or_embedding(tmp_path, library, tiny_model):
    indexed(tmp_path, library, tiny_model).close()
    copy = add_copy(library)
    idx = Index(tmp_path / "index")  # a fresh handle: whether this run loads the model shows
    before = idx.counts()
    report = idx.add([library])
    assert report.copies == [(str(copy), str(library / "a" / "clip.mp4"))]
    assert (report.added, report.frames_added, report.frames_embedded) == ([], 0, 0)
    assert idx._embedder is None  # nothing to embed: the model was never loaded
    assert idx.counts() == {**before, "copies": 1}
    assert report.as_dict()["copies"] == 1 and idx.stats().copies == 1
    again = idx.add([library])
    assert (again.copies, again.added, again.unchanged) == ([], [], 2)  # an unchanged copy is left alone


def test_two_identical_new_files_in_one_run_index_one(tmp_path, library, tiny_model):
    copy = add_copy(library)
    idx = indexed(tmp_path, library, tiny_model)
    assert [s.path for s in idx.sources()] == [str(library / "a" / "clip.mp4")]
    assert idx.stats().last_run["copies"] == 1 and idx.counts()["copies"] == 1
    (hit,) = idx.search("a red circle", k=1, min_score=-1)
    assert hit.also == [str(copy)]


def test_copies_of_an_unreadable_file_are_tried_on_their_own_next_run(tmp_path, library, tiny_model):
    bad = {str(library / name) for name in ("bad1.mp4", "bad2.mp4")}
    for path in bad:
        Path(path).write_bytes(b"not a video" * 100)
    idx = Index(tmp_path / "index", model=tiny_model)
    (first, reason), (copy, why) = idx.add([library]).skipped
    assert {first, copy} == bad and why == (f"holds the same bytes as {first}, which could not be indexed ({reason}); "
                                            "tried again next run")
    assert [s.path for s in idx.skipped()] == [first]  # the copy is not remembered as unreadable
    again = idx.add([library])
    assert dict(again.skipped) == {first: reason, copy: reason}  # the copy was read itself, and failed itself
    assert {s.path for s in idx.skipped()} == bad


def test_one_result_names_the_copy_through_the_api_and_the_cli(tmp_path, library, tiny_model):
    idx = indexed(tmp_path, library, tiny_model)
    copy = add_copy(library)
    idx.add([library])
    hits = api_hits(idx, per_video=0)
    assert {h["source"] for h in hits} == {"clip.mp4"} and len({h["source_id"] for h in hits}) == 1
    assert all(h["also"] == ["backup/clip.mp4"] for h in hits)
    html = create_app(idx).test_client().get("/", query_string={"q": "a red circle"}).get_data(as_text=True)
    assert "also at backup/clip.mp4" in html
    watch = create_app(idx).test_client().get(f"/watch/{hits[0]['source_id']}").get_data(as_text=True)
    assert "The same file is also at backup/clip.mp4." in watch
    idx.close()
    cli = CliRunner()
    res = cli.invoke(main, ["search", "--index", str(tmp_path / "index"), "a red circle", "--json", "-k", "1"])
    assert res.exit_code == 0, res.output
    (hit,) = json.loads(res.output)
    assert (hit["also"], hit["also_paths"]) == (["backup/clip.mp4"], [str(copy)])
    res = cli.invoke(main, ["search", "--index", str(tmp_path / "index"), "a red circle", "-k", "1"])
    assert f"also at  {copy}" in res.output
    res = cli.invoke(main, ["info", "--index", str(tmp_path / "index")])
    assert "1 byte copies of them" in res.output


def test_removing_the_original_keeps_the_copy_searchable_and_served(tmp_path, library, tiny_model):
    idx = indexed(tmp_path, library, tiny_model)
    (source,) = idx.sources()
    frame_ids = idx.frames(source.id)[0]
    copy = add_copy(library)
    idx.add([library])
    (library / "a" / "clip.mp4").unlink()
    report = idx.add([library])
    assert report.removed == [str(library / "a" / "clip.mp4")] and report.frames_embedded == 0
    (moved,) = idx.sources()
    assert (moved.id, moved.path, idx.frames(moved.id)[0]) == (source.id, str(copy), frame_ids)
    client = create_app(idx).test_client()
    hits = api_hits(idx)
    assert hits and all(h["source_id"] == source.id and h["also"] == [] for h in hits)
    assert client.get(f"/media/{source.id}").get_data() == copy.read_bytes()
    assert "also at" not in client.get(f"/watch/{source.id}").get_data(as_text=True)
    assert client.get(hits[0]["thumbnail_url"]).status_code == 200


def test_index_remove_of_the_source_path_keeps_its_copy(tmp_path, library, tiny_model):
    idx = indexed(tmp_path, library, tiny_model)
    copy = add_copy(library)
    idx.add([library])
    assert idx.remove(library / "a" / "clip.mp4")
    assert [s.path for s in idx.sources()] == [str(copy)] and idx.counts()["copies"] == 0
    assert idx.search("a red circle", k=1, min_score=-1)[0].source == str(copy)


def test_removing_the_copy_drops_it_from_also(tmp_path, library, tiny_model):
    idx = indexed(tmp_path, library, tiny_model)
    copy = add_copy(library)
    idx.add([library])
    copy.unlink()
    assert idx.add([library]).removed == [str(copy)]
    assert idx.counts()["copies"] == 0 and all(h["also"] == [] for h in api_hits(idx))
    add_copy(library)
    idx.add([library])
    assert idx.remove(copy) and idx.counts()["copies"] == 0  # and through Index.remove
    assert [s.path for s in idx.sources()] == [str(library / "a" / "clip.mp4")]


def test_a_changed_copy_becomes_its_own_source(tmp_path, library, stock, tiny_model):
    idx = indexed(tmp_path, library, tiny_model)
    copy = add_copy(library)
    idx.add([library])
    shutil.copy(stock["other"], copy)  # new bytes, new mtime
    report = idx.add([library])
    assert report.added == [str(copy)] and report.copies == []
    assert idx.counts()["copies"] == 0 and len(idx.sources()) == 2
    shutil.copy2(library / "a" / "clip.mp4", copy)  # a copy again: its frames go, it is named in `also` again
    report = idx.add([library])
    assert report.copies == [(str(copy), str(library / "a" / "clip.mp4"))] and len(idx.sources()) == 1


def test_another_encoding_merges_and_a_different_video_does_not(tmp_path, library, stock, tiny_model):
    shutil.copy(stock["mpg"], library / "clip.mpg")
    shutil.copy(stock["other"], library / "other.mp4")
    idx = indexed(tmp_path, library, tiny_model)
    assert len(idx.sources()) == 3  # nothing byte-equal: all indexed
    hits = api_hits(idx, per_video=1)
    by_name = {h["source"]: h for h in hits}
    # clip.mp4 and clip.mpg: one result for the red circle; other.mp4 has it at the same time but differs after.
    assert len(hits) == 2 and set(by_name) in ({"clip.mp4", "other.mp4"}, {"clip.mpg", "other.mp4"})
    twin = by_name.get("clip.mp4") or by_name["clip.mpg"]
    assert twin["also"] == ["clip.mpg" if twin["source"] == "clip.mp4" else "a/clip.mp4"]
    assert twin["start"] == 0 and by_name["other.mp4"]["also"] == []
    assert len(api_hits(idx, q="a blue square", per_video=1, k=2)) == 2  # k results after merging


def test_k_results_when_merging_ate_some(tmp_path, library, stock, tiny_model):
    """More of the index is fetched when merged encodings and the per-video cap leave fewer than k results."""
    shutil.copy(stock["mpg"], library / "clip.mpg")
    # 75 one-sample moments of the query and 75 samples less near it (a purple square): a first fetch (100 frames)
    # takes all those moments, whole, but they make one result (per_video), and green.mp4 is further.
    segments_video(library / "long.mp4", [(1, "square", "blue"), (1, "square", "purple")] * 75)
    segments_video(library / "green.mp4", [(2, "triangle", "green")])
    idx = indexed(tmp_path, library, tiny_model)
    hits = idx.search("a blue square", k=3, per_video=1, min_score=-1)
    names = sorted(os.path.basename(h.source) for h in hits)
    assert names in (["clip.mp4", "green.mp4", "long.mp4"], ["clip.mpg", "green.mp4", "long.mp4"])
    assert [h.also for h in hits if "clip" in h.source] in ([[str(library / "clip.mpg")]],
                                                           [[str(library / "a" / "clip.mp4")]])


def test_upgrade_from_format_3(tmp_path, library, tiny_model):
    indexed(tmp_path, library, tiny_model).close()
    db = sqlite3.connect(tmp_path / "index" / CATALOG)
    db.executescript("DROP TABLE copies; ALTER TABLE sources DROP COLUMN hash;"
                     "UPDATE meta SET value='3' WHERE key='format_version';")
    db.close()
    idx = Index(tmp_path / "index")
    assert idx._opened.catalog.read_meta()["format_version"] == SCHEMA_VERSION == 8
    copy = add_copy(library)
    assert idx.add([library]).copies == [(str(copy), str(library / "a" / "clip.mp4"))]
    assert idx.search("a red circle", k=1, min_score=-1)[0].also == [str(copy)]


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)")
def test_the_card_names_the_copy_in_a_browser(tmp_path, library, tiny_model):
    idx = indexed(tmp_path, library, tiny_model)
    add_copy(library)
    idx.add([library])
    with serving(create_app(idx)) as url, chromium() as browser, \
            checked_page(browser) as page:
        page.goto(url)
        page.fill("input[name=q]", "a red circle")
        page.press("input[name=q]", "Enter")
        card = page.locator("li.card").first
        card.wait_for()
        assert card.locator(".also").inner_text() == "also at backup/clip.mp4"
        assert card.locator(".name").inner_text() == "clip.mp4"
    idx.close()
