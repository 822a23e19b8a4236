"""Filters by kind, folder, date and duration: read from the media's own metadata at indexing, applied inside the
search (k results whenever k exist), through the Python API, the web app, its JSON API and the CLI."""
from __future__ import annotations

import datetime as dt
import json
import os
import re
import sqlite3
from html import unescape
from pathlib import Path

import numpy as np
import pytest
from browsers import CHROMIUM, checked_page, chromium, serving
from click.testing import CliRunner
from media import draw, encode
from PIL import Image

import vidsearch
from vidsearch import vectors
from vidsearch.catalog import SCHEMA_VERSION, SourceFilter
from vidsearch.cli import main
from vidsearch.extract.metadata import created_time, parse_timestamp
from vidsearch.index import Index
from vidsearch.search import Query, QueryError, source_filter
from vidsearch.store import Store
from vidsearch.vectors import Selection, Vectors
from vidsearch.web import create_app

BEACH_MADE = dt.datetime(2020, 5, 1, 12, tzinfo=dt.timezone.utc).timestamp()  # its container says so
LONG_MTIME = dt.datetime(2022, 3, 10, 12).timestamp()  # no tag: its file's mtime
RED_TAKEN = dt.datetime(2019, 7, 4, 10, tzinfo=dt.timezone(dt.timedelta(hours=2))).timestamp()  # EXIF, with offset
BLUE_MTIME = dt.datetime(2021, 1, 15, 12).timestamp()
ALL = {"min_score": -1, "per_video": 0, "k": 50}  # every moment, best first


def video(path: Path, segments: list[tuple[int, str, str]], *extra: str) -> Path:
    """media.segments_video, with ffmpeg's output options (`-metadata creation_time=...`)."""
    return encode(path, [draw(shape, colour) for seconds, shape, colour in segments for _ in range(seconds * 25)],
                  extra=list(extra))


def local_day(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts).date().isoformat()


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """trips/beach.mp4 (4 s, tagged 2020-05-01), trips/long.mp4 (8 s, untagged), photos/red.jpg (EXIF 2019-07-04),
    photos/blue.png (no EXIF)."""
    root = tmp_path_factory.mktemp("filters") / "library"
    video(root / "trips" / "beach.mp4", [(2, "circle", "red"), (2, "square", "blue")],
          "-metadata", "creation_time=2020-05-01T12:00:00Z")
    video(root / "trips" / "long.mp4", [(4, "triangle", "green"), (4, "circle", "yellow")])
    os.utime(root / "trips" / "long.mp4", (LONG_MTIME, LONG_MTIME))
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = "2019:07:04 10:00:00"
    exif.get_ifd(0x8769)[0x9011] = "+02:00"
    (root / "photos").mkdir()
    Image.fromarray(draw("circle", "red", (200, 200))).save(root / "photos" / "red.jpg", exif=exif, quality=90)
    Image.fromarray(draw("square", "blue", (200, 200))).save(root / "photos" / "blue.png")
    os.utime(root / "photos" / "blue.png", (BLUE_MTIME, BLUE_MTIME))
    return root


@pytest.fixture(scope="module")
def index(tmp_path_factory, library, tiny_model):
    idx = Index(tmp_path_factory.mktemp("filters") / "index", model=tiny_model)
    assert not idx.add([library]).skipped
    yield idx
    idx.close()


@pytest.fixture(scope="module")
def client(index):
    return create_app(index).test_client()


def names(hits) -> set[str]:
    return {os.path.basename(h.source if hasattr(h, "source") else h["source"]) for h in hits}


# -- what indexing records ----------------------------------------------------------------------------------------

def test_creation_times_come_from_the_container_or_exif_else_the_mtime(index, library):
    created = {os.path.basename(s.path): s.created for s in index.sources()}
    assert created == {"beach.mp4": BEACH_MADE, "long.mp4": LONG_MTIME, "red.jpg": RED_TAKEN,
                       "blue.png": BLUE_MTIME}
    assert created_time(str(library / "trips" / "long.mp4"), "video") is None
    assert created_time(str(library / "nothing.jpg"), "image") is None  # never raises


@pytest.mark.parametrize("text, naive_utc, want", [
    ("2020-05-01T12:00:00.000000Z", True, dt.datetime(2020, 5, 1, 12, tzinfo=dt.timezone.utc)),
    ("2020-05-01T14:00:00+0200", True, dt.datetime(2020, 5, 1, 12, tzinfo=dt.timezone.utc)),
    ("2020-05-01 12:00:00", True, dt.datetime(2020, 5, 1, 12, tzinfo=dt.timezone.utc)),
    ("2019:07:04 10:00:00\0", False, dt.datetime(2019, 7, 4, 10)),  # EXIF without an offset: local time
    ("0000:00:00 00:00:00", False, None),
    ("    :  :     :  :  ", False, None),
    ("2021", True, None),
])
def test_metadata_dates_are_parsed(text, naive_utc, want):
    assert parse_timestamp(text, naive_utc) == (None if want is None else want.timestamp())


# -- the Python API -----------------------------------------------------------------------------------------------

def test_each_filter_through_the_python_api(index, library):
    everything = names(index.search("a red circle", **ALL))
    assert everything == {"beach.mp4", "long.mp4", "red.jpg", "blue.png"}
    assert names(index.search("a red circle", kind="video", **ALL)) == {"beach.mp4", "long.mp4"}
    assert names(index.search("a red circle", kind="image", **ALL)) == {"red.jpg", "blue.png"}
    assert names(index.search("a red circle", folder=library / "photos", **ALL)) == {"red.jpg", "blue.png"}
    assert names(index.search("a red circle", folder=str(library / "trips") + "/", **ALL)) == {"beach.mp4",
                                                                                            "long.mp4"}
    assert names(index.search("a red circle", folder=library / "trips" / "beach.mp4", **ALL)) == {"beach.mp4"}
    assert not index.search("a red circle", folder=library / "trip", **ALL)  # a prefix of a name is no folder
    day = local_day(BEACH_MADE)
    assert names(index.search("a red circle", after=day, before=day, **ALL)) == {"beach.mp4"}
    assert names(index.search("a red circle", after=dt.date.fromisoformat(local_day(BLUE_MTIME)),
                              **ALL)) == {"long.mp4", "blue.png"}
    assert names(index.search("a red circle", before=local_day(BEACH_MADE), **ALL)) == {"beach.mp4", "red.jpg"}
    # Durations keep videos only: photos have none.
    assert names(index.search("a red circle", min_duration=6, **ALL)) == {"long.mp4"}
    assert names(index.search("a red circle", max_duration=6, **ALL)) == {"beach.mp4"}
    assert names(index.search("a red circle", min_duration=0, **ALL)) == {"beach.mp4", "long.mp4"}
    assert names(index.search(Query("a red circle", kind="video", after="2021-01-01", **ALL))) == {"long.mp4"}
    assert index.search("a red circle", kind="image", after="2030-01-01", **ALL) == []


def test_relative_scores_stay_over_the_whole_index(index):
    full = {h.frame_id: h.z for h in index.search("a blue square", **ALL)}
    for h in index.search("a blue square", kind="image", **ALL):
        assert h.z == pytest.approx(full[h.frame_id])


@pytest.mark.parametrize("fields, message", [
    ({"kind": "audio"}, "kind must be video or image"),
    ({"after": "2020-13-01"}, "after must be a date written YYYY-MM-DD"),
    ({"before": "yesterday"}, "before must be a date"),
    ({"after": "2021-01-02", "before": "2021-01-01"}, "later than before"),
    ({"min_duration": -1}, "min_duration must be a number of seconds"),
    ({"min_duration": 9, "max_duration": 3}, "is more than max_duration"),
    ({"kind": "image", "max_duration": 3}, "keeps videos only"),
])
def test_bad_filters_say_what_is_wrong(index, fields, message):
    with pytest.raises(QueryError, match=message):
        index.search("a red circle", **fields)


def test_a_filter_is_days_in_local_time_and_paths_as_stored():
    f = source_filter(Query("x", folder="/a/b/../c/", after="2021-03-04", before=dt.date(2021, 3, 4)))
    assert f.folder == "/a/c"
    assert f.created_from == dt.datetime(2021, 3, 4).timestamp()
    assert f.created_to == dt.datetime(2021, 3, 5).timestamp()  # inclusive day: up to its end
    assert source_filter(Query("x")) is None
    assert source_filter(Query("x", kind="", folder="")) is None  # empty form fields are no filter


# -- the web app and its JSON API ---------------------------------------------------------------------------------

def test_each_filter_through_the_json_api(client, library):
    def api(**params):
        res = client.get("/api/search", query_string={"q": "a red circle", "min_score": -1, "per_video": 0,
                                                      "k": 50, **params})
        assert res.status_code == 200, res.json
        return res.json

    assert names(api(kind="video")["hits"]) == {"beach.mp4", "long.mp4"}
    assert names(api(kind="image")["hits"]) == {"red.jpg", "blue.png"}
    got = api(folder=str(library / "photos"))
    assert names(got["hits"]) == {"red.jpg", "blue.png"} and got["query"]["folder"] == str(library / "photos")
    day = local_day(BEACH_MADE)
    got = api(after=day, before=day)
    assert names(got["hits"]) == {"beach.mp4"}
    assert (got["query"]["after"], got["query"]["before"]) == (day, day)
    got = api(min_duration="6")
    assert names(got["hits"]) == {"long.mp4"} and got["query"]["min_duration"] == 6.0
    assert names(api(max_duration="6")["hits"]) == {"beach.mp4"}
    assert api()["query"] | {"kind": None, "folder": None, "after": None, "before": None, "min_duration": None,
                             "max_duration": None} == api()["query"]  # echoed, null when unset
    assert api(kind="image", after="2030-01-01")["count"] == 0


@pytest.mark.parametrize("params, message", [
    ({"kind": "audio"}, "kind must be video or image."),
    ({"folder": "photos"}, "folder must be an absolute path"),
    ({"folder": "/a\0b"}, "folder must be an absolute path"),
    ({"after": "2020-02-30"}, "after must be a date written YYYY-MM-DD"),
    ({"before": "1/2/2020"}, "before must be a date written YYYY-MM-DD"),
    ({"after": "0001-01-01"}, "after must be a date"),
    ({"min_duration": "-1"}, "min_duration must be a number from 0 to 999999 (seconds)."),
    ({"max_duration": "nan"}, "max_duration must be a number"),
    ({"after": "2021-01-02", "before": "2021-01-01"}, "after (2021-01-02) is later than before (2021-01-01)."),
    ({"min_duration": "9", "max_duration": "3"}, "min_duration (9 s) is more than max_duration (3 s)."),
    ({"kind": "image", "min_duration": "3"}, "keeps videos only"),
])
def test_bad_filters_are_400_with_a_message(client, params, message):
    res = client.get("/api/search", query_string={"q": "a red circle", **params})
    assert res.status_code == 400 and message in res.json["error"]
    page = client.get("/", query_string={"q": "a red circle", **params})
    assert page.status_code == 400 and message in unescape(page.get_data(as_text=True))


def test_the_folder_is_compared_never_opened(client, tmp_path):
    secret = tmp_path / "secret"
    secret.mkdir()
    res = client.get("/api/search", query_string={"q": "a red circle", "folder": f"{secret}/../../../etc"})
    assert res.status_code == 200 and res.json["count"] == 0  # normalised as text, matches no indexed path


def test_the_refine_panel_has_the_filters_and_links_carry_them(client, library):
    page = client.get("/").get_data(as_text=True)
    assert re.search(r'<select name="kind">', page) and 'name="folder"' in page and 'list="folders"' in page
    assert f'<option value="{library / "photos"}">' in page and f'<option value="{library / "trips"}">' in page
    assert f'<option value="{library}">' in page  # the folder they share
    assert 'type="date" name="after"' in page and 'type="date" name="before"' in page
    assert 'name="min_duration"' in page and 'name="max_duration"' in page
    assert "<details class=\"refine\">" in page  # closed: no filter in force

    day = local_day(BEACH_MADE)
    res = client.get("/", query_string={"q": "a blue square", "kind": "video", "folder": str(library / "trips"),
                                        "after": day, "before": day, "min_duration": "1", "max_duration": "5",
                                        "min_score": "-1"})
    page = res.get_data(as_text=True)
    assert res.status_code == 200 and "<details class=\"refine\" open>" in page
    assert '<option value="video" selected>' in page and f'value="{day}"' in page
    assert "beach.mp4" in page and "long.mp4" not in page and "red.jpg" not in page
    watch = unescape(re.search(r'class="open" href="([^"]+)"', page).group(1))
    for part in ("kind=video", "after=" + day, "before=" + day, "min_duration=1", "max_duration=5", "folder="):
        assert part in watch
    back = client.get(watch).get_data(as_text=True)  # the watch page's way back redoes the filtered query
    href = unescape(re.search(r'class="back" href="([^"]+)"', back).group(1))
    assert "kind=video" in href and "min_duration=1" in href
    # The image form (no JavaScript) keeps them too.
    assert re.search(r'<input type="hidden" name="kind" value="video">', page)

    empty = client.get("/", query_string={"q": "a blue square", "kind": "image", "after": "2030-01-01"})
    assert "Nothing in the index matches these filters." in empty.get_data(as_text=True)


# -- the CLI ------------------------------------------------------------------------------------------------------

def test_each_filter_through_the_cli(index, library, tmp_path, monkeypatch):
    monkeypatch.chdir(library)

    def cli(*args):
        res = CliRunner().invoke(main, ["search", "a red circle", "--index", str(index.path), "--json",
                                        "--min-score", "-1", "--per-video", "0", "-k", "50", *args],
                                 catch_exceptions=False)
        assert res.exit_code == 0, res.output
        return {Path(h["path"]).name for h in json.loads(res.output)}

    assert cli("--kind", "video") == {"beach.mp4", "long.mp4"}
    assert cli("--kind", "image") == {"red.jpg", "blue.png"}
    assert cli("--folder", "photos") == {"red.jpg", "blue.png"}  # relative to the current folder
    os.symlink(library / "trips", tmp_path / "link")
    assert cli("--folder", tmp_path / "link") == {"beach.mp4", "long.mp4"}  # symlinks resolved, as indexed
    day = local_day(BEACH_MADE)
    assert cli("--after", day, "--before", day) == {"beach.mp4"}
    assert cli("--min-duration", "6") == {"long.mp4"}
    assert cli("--max-duration", "6", "--kind", "video") == {"beach.mp4"}

    res = CliRunner().invoke(main, ["search", "x", "--index", str(index.path), "--after", "2020-13-01"])
    assert res.exit_code == 2 and "YYYY-MM-DD" in res.output
    res = CliRunner().invoke(main, ["search", "x", "--index", str(index.path), "--kind", "image",
                                    "--min-duration", "1"])
    assert res.exit_code == 2 and "keeps videos only" in res.output
    res = CliRunner().invoke(main, ["search", "x", "--index", str(index.path), "--kind", "image", "--after",
                                    "2030-01-01"])
    assert res.exit_code == 0 and "nothing in the index matches the filters" in res.output


# -- k results whenever k exist -----------------------------------------------------------------------------------

D = 32
SOURCES, PER_SOURCE, FOLDERS = 200, 50, 100  # 10,000 frames; a folder holds 2 sources: 1 % of the frames


def clustered(n, seed=0, centres=50):
    rng = np.random.default_rng(seed)
    c = np.random.default_rng(99).standard_normal((centres, D))
    x = c[rng.integers(0, centres, n)] + 0.3 * rng.standard_normal((n, D))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def synthetic_index(root: Path) -> np.ndarray:
    """An index folder of SOURCES videos, each PER_SOURCE frames 10 s apart (every frame its own moment), in FOLDERS
    folders, one created a day; the vectors by frame id - 1. Written straight into the catalog, no thumbnails."""
    x = clustered(SOURCES * PER_SOURCE)
    store = Store.create(root, model="synthetic", pretrained="", dim=D, interval=1.0, min_score=0.0)
    with store.catalog.write():
        for s in range(SOURCES):
            store.catalog.add_source(f"/lib/f{s % FOLDERS:03d}/v{s:04d}.mp4", "video", 0, 0, 10.0 * PER_SOURCE,
                                     30, 64, 64, [10.0 * i for i in range(PER_SOURCE)],
                                     x[s * PER_SOURCE:(s + 1) * PER_SOURCE],
                                     created=dt.datetime(2020, 1, 1).timestamp() + 86400 * s)
    store.save_vectors()
    store.close()
    return x


def truth(x: np.ndarray, q: np.ndarray, keep: np.ndarray, k: int) -> list[int]:
    ids = np.flatnonzero(keep)
    return (ids[np.argsort(-(x[ids] @ q), kind="stable")[:k]] + 1).tolist()


def kept(folder: int | None = None, days: tuple[int, int] | None = None) -> np.ndarray:
    s = np.arange(SOURCES * PER_SOURCE) // PER_SOURCE
    keep = np.ones(len(s), bool)
    if folder is not None:
        keep &= s % FOLDERS == folder
    if days is not None:
        keep &= (s >= days[0]) & (s <= days[1])
    return keep


@pytest.mark.parametrize("kind", ["exact", "ivf", "ivfpq"])
@pytest.mark.parametrize("brute", [True, False], ids=["brute force", "faiss selector"])
def test_a_filter_keeping_one_percent_still_returns_k(tmp_path, monkeypatch, kind, brute):
    monkeypatch.setattr(vectors, "EXACT_LIMIT", 10_000 if kind == "exact" else 1000)
    monkeypatch.setattr(vectors, "COMPRESS_LIMIT", 20_000 if kind != "ivfpq" else 2000)
    monkeypatch.setattr(vectors, "PQ_BYTES", 8)
    monkeypatch.setattr(vectors, "BRUTE_LIMIT", 2048 if brute else 0)
    x = synthetic_index(tmp_path / "idx")
    idx = vidsearch.Index(tmp_path / "idx")
    store = Store(tmp_path / "idx")  # to look inside
    assert store.vectors.synced().kind == kind
    hits_seen = 0
    for like in range(1, 10_000, 997):
        folder = ((like - 1) // PER_SOURCE + 37) % FOLDERS  # another folder's: the nearest frames are elsewhere
        hits = idx.search(like=like, folder=f"/lib/f{folder:03d}", k=10, per_video=0, min_score=-1)
        assert len(hits) == 10 and all(f"/lib/f{folder:03d}/" in h.source for h in hits)
        want = truth(x, x[like - 1], kept(folder), 10)
        got = [h.frame_id for h in hits]
        if brute or kind == "exact":
            assert got == want  # exact
        else:
            hits_seen += len(set(got) & set(want))
    if not brute and kind != "exact":
        assert hits_seen >= 0.9 * 10 * len(range(1, 10_000, 997))  # recall@10 as the unfiltered index's
    # A date range that keeps 2 sources (100 frames), and one that keeps most of the index (built from the few
    # frames it leaves out).
    day0 = dt.date(2020, 1, 1)
    hits = idx.search(like=5000, after=day0 + dt.timedelta(days=3), before=day0 + dt.timedelta(days=4), k=10,
                      per_video=0, min_score=-1)
    assert len(hits) == 10 and {h.source_id for h in hits} <= {4, 5}
    hits = idx.search(like=5000, after=day0 + dt.timedelta(days=2), k=10, per_video=0, min_score=-1)
    assert len(hits) == 10 and min(h.source_id for h in hits) >= 3
    selection = store.vectors.selection(source_filter(Query(after=day0 + dt.timedelta(days=2))))
    assert selection.count == (SOURCES - 2) * PER_SOURCE and selection.ids is None
    # Fewer than k kept: all of them come back.
    hits = idx.search(like=5000, folder="/lib/f007/v0007.mp4", k=80, per_video=0, min_score=-1)
    assert len(hits) == PER_SOURCE
    idx.close()
    store.close()


def test_kept_frames_gathered_away_from_the_query_are_still_found(monkeypatch):
    """An IVF index probes the lists nearest the query; a folder whose frames all sit in lists far from it is found by
    probing them all."""
    x = clustered(8000, centres=20)
    v = Vectors.build("ivf", D, np.arange(1, 8001), lambda want: {i: x[i - 1] for i in want})
    v.index.nprobe = 1  # a filter keeping 5 % then probes 20 lists of 357: those around the query
    centres = np.random.default_rng(99).standard_normal((20, D))
    cluster = np.argmax(x @ centres.T, axis=1)
    far = np.flatnonzero(cluster == np.argmin(centres @ x[0])) + 1  # the cluster farthest from the query
    _, got = v.search(x[:1], 10, selection=Selection.of(far, 8000, 8000))
    assert got[0].tolist() == (far[np.argsort(-(x[far - 1] @ x[0]))[:10]]).tolist()  # all probed: exact


def test_a_new_source_is_seen_by_a_filter_searched_before(tmp_path):
    x = synthetic_index(tmp_path / "idx")
    idx = vidsearch.Index(tmp_path / "idx")
    assert len(idx.search(like=1, folder="/lib/f001", k=200, per_video=0, min_score=-1)) == 2 * PER_SOURCE
    writer = Store(tmp_path / "idx")  # another process indexes meanwhile
    staged = tmp_path / "t.jpg"
    staged.touch()
    writer.put_source("/lib/f001/new.mp4", "video", 0, 0, 1.0, 30, 64, 64, [(0.0, x[0], staged)])
    assert writer.vectors.selection(SourceFilter(folder="/lib/f001")).count == 2 * PER_SOURCE + 1
    hits = idx.search(like=1, folder="/lib/f001", k=200, per_video=0, min_score=-1)
    assert len(hits) == 2 * PER_SOURCE + 1 and hits[0].source == "/lib/f001/new.mp4"  # frame 1's twin
    idx.close()
    writer.close()


# -- an index of format 2 -----------------------------------------------------------------------------------------

def test_an_index_of_format_2_is_dated_by_mtime_and_can_be_filtered(tmp_path, tiny_model):
    media = tmp_path / "media"
    video(media / "a.mp4", [(2, "circle", "red")], "-metadata", "creation_time=2020-05-01T12:00:00Z")
    Image.fromarray(draw("square", "blue")).save(media / "b.png")
    mtime = dt.datetime(2018, 6, 1, 12).timestamp()
    os.utime(media / "a.mp4", (mtime, mtime))
    vidsearch.Index(tmp_path / "index", model=tiny_model).add([media])
    db = sqlite3.connect(tmp_path / "index" / "catalog.sqlite")
    with db:  # what vidsearch wrote before it read creation dates: format 2, no `created` column
        db.execute("ALTER TABLE sources DROP COLUMN created")
        db.execute("UPDATE meta SET value='2' WHERE key='format_version'")
    old = vidsearch.Index(tmp_path / "index")
    sources = {os.path.basename(s.path): s for s in old.sources()}
    assert all(s.created == s.mtime for s in sources.values())  # no file is read again: the mtime dates it
    assert sources["a.mp4"].created == mtime
    assert names(old.search("a red circle", before="2018-06-01", min_score=-1)) == {"a.mp4"}
    assert names(old.search("a red circle", after="2018-06-02", min_score=-1)) == {"b.png"}
    old.close()
    assert db.execute("SELECT value FROM meta WHERE key='format_version'").fetchone() == (str(SCHEMA_VERSION),)
    db.close()


# -- the Refine panel in a browser --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def served(index):
    with serving(create_app(index)) as url:
        yield url


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}")
def test_the_refine_panel_filters_in_a_browser(served, library):
    with chromium() as browser, checked_page(browser) as page:
        page.goto(served)
        page.click(".refine summary")
        page.fill("input[name=q]", "a red circle")
        page.select_option("select[name=kind]", "image")
        page.fill("input[name=after]", "2019-01-01")
        page.fill("input[name=min_score]", "-1")
        page.press("input[name=q]", "Enter")
        page.wait_for_selector(".card")
        assert "kind=image" in page.url and "after=2019-01-01" in page.url and "folder" not in page.url
        kinds = page.locator(".card").evaluate_all("cards => cards.map(c => c.dataset.kind)")
        assert kinds and set(kinds) == {"image"}
        assert page.locator("details.refine").get_attribute("open") is not None
        assert page.input_value("select[name=kind]") == "image" and page.input_value("input[name=after]") == \
            "2019-01-01"

        page.fill("input[name=folder]", str(library / "trips"))  # offered by the datalist; typed here
        page.select_option("select[name=kind]", "")
        page.fill("input[name=min_duration]", "6")
        page.press("input[name=q]", "Enter")
        page.wait_for_url("**min_duration=6**")
        page.wait_for_selector(".card")
        names = page.locator(".card .name").all_inner_texts()
        assert names and set(names) == {"long.mp4"}
