"""The Python API end to end with the tiny test CLIP: index media, search it, keep it up to date."""
import os
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from media import draw, encode, segments_video
from PIL import Image

import vidsearch


def catalog(index_dir):
    db = sqlite3.connect(index_dir / "catalog.sqlite")
    try:
        return sorted(db.execute("SELECT s.path, f.t FROM frames f JOIN sources s ON s.id = f.source_id"))
    finally:
        db.close()


@pytest.fixture(scope="module")
def shapes_index(tmp_path_factory, tiny_model, shapes_video):
    path, spans = shapes_video
    idx = vidsearch.Index(tmp_path_factory.mktemp("idx") / "index", model=tiny_model)
    report = idx.add([path.parent])
    assert report.added == [str(path)] and report.frames_added == 12
    return idx, path, spans


def test_each_text_query_finds_its_segment(shapes_index):
    idx, path, spans = shapes_index
    for start, end, shape, colour in spans:
        best = idx.search(f"a {colour} {shape}", k=1)[0]
        assert best.source == str(path) and best.kind == "video"
        assert start <= best.t < end, (colour, shape, best.t)


def test_a_segment_is_one_moment(shapes_index):
    idx, path, spans = shapes_index
    hits = idx.search("something blue", k=3)
    assert len(hits) == 1  # the blue square, once: not three near-identical frames
    assert (hits[0].start, hits[0].end) == (3.0, 6.0) and 3 <= hits[0].t < 6


def test_hits_carry_scores_thumbnails_and_min_score(shapes_index):
    idx, _, _ = shapes_index
    hits = idx.search("a red circle", k=10, min_score=-1)
    spans = sorted((h.start, h.end) for h in hits)
    assert spans[0][0] == 0 and spans[-1][1] == 12 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    assert hits == sorted(hits, key=lambda h: -h.score) and (hits[0].start, hits[0].end) == (0, 3)
    assert hits[0].z > 1 > hits[-1].z  # the match stands out from this query's scores over the index
    assert all(os.path.getsize(h.thumbnail) > 0 for h in hits)
    with Image.open(hits[0].thumbnail) as thumb:
        assert max(thumb.size) <= 320
    cut = hits[1].score
    assert [h.start for h in idx.search("a red circle", k=10, min_score=cut)] == [hits[0].start, hits[1].start]


def test_image_query_from_a_video_frame_finds_that_moment(tmp_path, tiny_model):
    # Every second looks different, so "that time" is one sample.
    combos = [(s, c) for c in ["red", "green", "blue", "yellow"] for s in ["circle", "square", "triangle"]]
    video = segments_video(tmp_path / "media" / "twelve.mp4", [(1, s, c) for s, c in combos])
    Image.fromarray(draw("circle", "purple", (200, 200))).save(tmp_path / "media" / "other.png")
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    idx.add([tmp_path / "media"])
    for second in (4, 7):
        query = draw(*combos[second], size=(640, 360))  # same picture, other size: what a user would upload
        best = idx.search(image=query, k=1)[0]
        assert best.source == str(video) and best.t == pytest.approx(second, abs=0.05)
    path_query = tmp_path / "q.jpg"
    Image.fromarray(draw(*combos[7], size=(320, 180))).save(path_query)
    assert idx.search(image=path_query, k=1)[0].t == pytest.approx(7, abs=0.05)
    hit = idx.search(image=Image.open(path_query), k=1)[0]
    assert idx.search(like=hit.frame_id, k=1)[0].frame_id == hit.frame_id  # a stored frame finds itself


def test_images_of_every_kind_are_indexed(tmp_path, tiny_model):
    media = tmp_path / "photos"
    media.mkdir()
    red = Image.fromarray(draw("circle", "red", (120, 120)))
    red.convert("P", palette=Image.Palette.ADAPTIVE).save(media / "palette.png")
    Image.fromarray(draw("square", "blue", (120, 120))).convert("L").save(media / "grey.png")
    Image.fromarray(draw("triangle", "green", (120, 120))).convert("RGBA").save(media / "rgba.png")
    Image.fromarray(np.asarray(draw("square", "white", (64, 64)))[:, :, 0].astype(np.uint16) * 257).save(
        media / "sixteen.png")
    Image.fromarray(draw("square", "yellow", (120, 120))).save(media / "png_named.jpg", format="PNG")
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    report = idx.add([media])
    assert sorted(os.path.basename(p) for p in report.added) == [
        "grey.png", "palette.png", "png_named.jpg", "rgba.png", "sixteen.png"]
    assert not report.skipped
    assert os.path.basename(idx.search("something red", k=1)[0].source) == "palette.png"
    assert os.path.basename(idx.search("something yellow", k=1)[0].source) == "png_named.jpg"
    assert all(h.kind == "image" and h.t == h.start == h.end == 0 for h in idx.search("a square", k=5))


def test_incremental_runs(tmp_path, tiny_model):
    media = tmp_path / "media"
    a = segments_video(media / "a.mp4", [(3, "circle", "red")])
    b = segments_video(media / "sub" / "b.mp4", [(2, "square", "blue")])
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    first = idx.add([media])
    assert first.frames_added == 5 and len(first.added) == 2
    before = catalog(idx.path)

    again = idx.add([media])
    assert (again.frames_added, again.unchanged, again.added, again.removed) == (0, 2, [], [])
    assert catalog(idx.path) == before

    segments_video(a, [(4, "triangle", "green")])  # rewritten: new size and mtime
    changed = idx.add([media])
    assert changed.added == [str(a)] and changed.frames_added == 4
    assert len(catalog(idx.path)) == 6 and len(set(catalog(idx.path))) == 6  # never a duplicate
    assert idx.search("something green", k=1)[0].source == str(a)

    (media / "sub" / "notes.txt").write_text("the folder still shows something: b is gone, not offline")
    b.unlink()
    gone = idx.add([media])
    assert gone.removed == [str(b)] and idx.stats().sources == 1
    assert all(h.source == str(a) for h in idx.search("something blue", k=10))


def test_adding_another_folder_keeps_the_first(tmp_path, tiny_model):
    one = segments_video(tmp_path / "one" / "x.mp4", [(2, "circle", "red")])
    two = segments_video(tmp_path / "two" / "y.mp4", [(2, "circle", "blue")])
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    idx.add([tmp_path / "one"])
    report = idx.add([tmp_path / "two"])
    assert report.removed == [] and {s.path for s in idx.sources()} == {str(one), str(two)}
    assert idx.remove(one) and [s.path for s in idx.sources()] == [str(two)]


def test_broken_files_are_skipped_with_reasons(tmp_path, tiny_model):
    media = tmp_path / "media"
    good = segments_video(media / "good.mp4", [(2, "circle", "red")])
    (media / "empty.mp4").write_bytes(b"")
    (media / "text.mp4").write_text("not a video\n" * 100)
    full = encode(tmp_path / "full.mp4", [draw("square", "blue")] * 100)
    (media / "truncated.mp4").write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    report = idx.add([media])
    assert report.added == [str(good)]
    reasons = dict(report.skipped)
    assert reasons[str(media / "empty.mp4")] == "empty file"
    assert "not a readable image or video" in reasons[str(media / "text.mp4")]
    assert "not a readable image or video" in reasons[str(media / "truncated.mp4")]
    assert idx.stats().skipped == 3
    # Unchanged broken files are reported again but not retried; a repaired one is indexed.
    again = idx.add([media])
    assert len(again.skipped) == 3 and again.added == []
    (media / "truncated.mp4").write_bytes(full.read_bytes())
    fixed = idx.add([media])
    assert fixed.added == [str(media / "truncated.mp4")] and idx.stats().skipped == 2


def test_another_model_is_refused_and_nothing_changes(tmp_path, tiny_model):
    segments_video(tmp_path / "m" / "a.mp4", [(1, "circle", "red")])
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    idx.add([tmp_path / "m"])
    before = sorted(p.name for p in idx.path.iterdir())
    with pytest.raises(vidsearch.IndexMismatch, match="another model"):
        vidsearch.Index(tmp_path / "index", model="ViT-B-32")
    with pytest.raises(vidsearch.IndexMismatch, match="interval"):
        vidsearch.Index(tmp_path / "index", interval=2.0)
    assert sorted(p.name for p in idx.path.iterdir()) == before
    reopened = vidsearch.Index(tmp_path / "index")  # no options: the recorded model and interval
    assert (reopened.model, reopened.interval) == (idx.model, 1.0)


def test_two_readers_and_a_writer(tmp_path, tiny_model):
    segments_video(tmp_path / "m" / "a.mp4", [(2, "circle", "red")])
    writer = vidsearch.Index(tmp_path / "index", model=tiny_model)
    writer.add([tmp_path / "m"])
    reader = vidsearch.Index(tmp_path / "index")
    assert [(h.start, h.end) for h in reader.search("something red", k=10)] == [(0, 2)]
    segments_video(tmp_path / "m" / "b.mp4", [(3, "square", "blue")])
    writer.add([tmp_path / "m"])
    # The open reader sees the new source without reopening.
    assert [(h.source, h.start, h.end) for h in reader.search("something blue", k=10)] == [
        (str(tmp_path / "m" / "b.mp4"), 0, 3)]


def test_local_dir_without_weights_is_refused(tmp_path, tiny_model):
    empty = tmp_path / "model"
    empty.mkdir()
    (empty / "open_clip_config.json").write_text(
        (Path(tiny_model[len("local-dir:"):]) / "open_clip_config.json").read_text())
    idx = vidsearch.Index(tmp_path / "index", model=f"local-dir:{empty}")
    segments_video(tmp_path / "m" / "a.mp4", [(1, "circle", "red")])
    with pytest.raises(vidsearch.ModelLoadError, match="no weights file"):
        idx.add([tmp_path / "m"])
    assert not (tmp_path / "index").exists()


def test_a_run_killed_while_creating_the_index_leaves_nothing_that_blocks(tmp_path, tiny_model):
    # What a SIGKILL inside Store.create leaves: the catalog under construction, without its tables.
    index_dir = tmp_path / "index"
    index_dir.mkdir()
    sqlite3.connect(index_dir / "catalog.sqlite.new").execute("PRAGMA journal_mode=WAL").close()
    idx = vidsearch.Index(index_dir, model=tiny_model)
    assert not idx.exists
    segments_video(tmp_path / "m" / "a.mp4", [(2, "circle", "red")])
    assert idx.add([tmp_path / "m"]).frames_added == 2
    assert vidsearch.Index(index_dir).stats().frames == 2
    assert not (index_dir / "catalog.sqlite.new").exists()


def test_an_index_of_an_older_vidsearch_is_upgraded_and_a_newer_one_refused(tmp_path, tiny_model):
    Image.fromarray(draw("circle", "red")).save(tmp_path / "red.png")
    vidsearch.Index(tmp_path / "index", model=tiny_model).add([tmp_path / "red.png"])
    db = sqlite3.connect(tmp_path / "index" / "catalog.sqlite")
    with db:  # what the first vidsearch wrote: format 1, which letterboxed every picture and did not say so
        db.execute("UPDATE meta SET value='1' WHERE key='format_version'")
        db.execute("DELETE FROM meta WHERE key='preprocess'")
    old = vidsearch.Index(tmp_path / "index")
    assert old.stats().preprocess == "letterbox" and old.search("a red circle", k=1)[0].kind == "image"
    old.close()
    assert db.execute("SELECT value FROM meta WHERE key='format_version'").fetchone() == ("8",)
    with db:
        db.execute("UPDATE meta SET value='99' WHERE key='format_version'")
    db.close()
    with pytest.raises(vidsearch.StoreError, match="has format 99, which this vidsearch cannot read"):
        vidsearch.Index(tmp_path / "index")


def test_files_decoded_side_by_side_make_the_same_index(tmp_path, tiny_model, monkeypatch):
    from click.testing import CliRunner

    from vidsearch.cli import main
    from vidsearch.ingest import local

    library = tmp_path / "library"
    library.mkdir()
    for i, (shape, colour) in enumerate([("circle", "red"), ("square", "blue"), ("triangle", "green"),
                                         ("circle", "yellow"), ("square", "red")]):
        segments_video(library / f"v{i}.mp4", [(2, shape, colour), (1, "triangle", "blue")])
    started = []
    real = local._Decoders.start_one
    monkeypatch.setattr(local._Decoders, "start_one", lambda self: (started.append(self), real(self))[1])

    def indexed(idx):
        return {Path(s.path).name: idx.frames(s.id)[1:] for s in idx.sources()}

    with vidsearch.Index(tmp_path / "one", model=tiny_model, decoders=1) as one:
        one.add([library])
        want = indexed(one)
    assert len(started) == 1
    out = CliRunner().invoke(main, ["index", str(library), "--index", str(tmp_path / "four"), "--model", tiny_model,
                                    "--decoders", "4"], catch_exceptions=False)
    assert out.exit_code == 0, out.output
    assert len(started) == 5 and len(set(started[1:])) == 1  # one run, four decode threads
    with vidsearch.Index(tmp_path / "four") as four:
        got = indexed(four)
    assert sorted(got) == sorted(want) == [f"v{i}.mp4" for i in range(5)]
    for name, (times, vecs) in want.items():
        assert np.array_equal(got[name][0], times) and np.allclose(got[name][1], vecs, atol=1e-6)
    assert local.decoders_for("cpu") == 2 and 2 <= local.decoders_for("cuda") <= 8
