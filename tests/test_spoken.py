"""Finding the moment by what is said: subtitles (a track inside the video, a sidecar file beside it) always, speech
(pocketsphinx on espeak-ng's voice) with --speech, kept as transcript lines in the catalog, ranked with the picture
and the words on screen, and shown in the player."""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from browsers import checked_page, chromium, serving
from click.testing import CliRunner
from media import FFMPEG, segments_video

import vidsearch
from vidsearch.catalog import CATALOG, SCHEMA_VERSION
from vidsearch.cli import main
from vidsearch.web import create_app

ESPEAK = shutil.which("espeak-ng")
# Phrases pocketsphinx hears right in espeak-ng's en-us voice at 120 words a minute (as tests/test_speech.py):
# (seconds of silence before, phrase, words asserted)
SPOKEN = [(2.0, "please call me tomorrow morning", "tomorrow morning"),
          (3.0, "one two three four five", "three four five")]
# (start, end, text) of the subtitle track inside talk.mp4 and of the sidecar beside film.mp4
TRACK = [(1.0, 2.5, "Welcome to the harbour tour"), (4.0, 6.0, "We moved to Lisbon in the spring")]
SIDECAR = [(2.0, 3.5, "The quarterly budget is tight"), (5.0, 6.5, "<i>Café</i> déjà vu, again")]


def srt(cues) -> str:
    def stamp(t: float) -> str:
        ms = round(t * 1000)
        return f"{ms // 3600000:02}:{ms // 60000 % 60:02}:{ms // 1000 % 60:02},{ms % 1000:03}"
    return "".join(f"{n}\n{stamp(a)} --> {stamp(b)}\n{text}\n\n" for n, (a, b, text) in enumerate(cues, 1))


def with_track(path: Path, cues, tmp: Path) -> Path:
    """`path` (a video) with a mov_text subtitle track holding `cues`, in place."""
    sub = tmp / (path.stem + ".track.srt")
    sub.write_text(srt(cues))
    out = path.with_suffix(".muxed.mp4")
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-i", str(path), "-i", str(sub), "-map", "0", "-map", "1",
                    "-c:v", "copy", "-c:s", "mov_text", str(out)], check=True)
    sub.unlink()
    os.replace(out, path)
    return path


def make_library(root: Path) -> Path:
    lib = root / "library"
    segments_video(lib / "talk.mp4", [(3, "circle", "red"), (4, "square", "blue")])
    with_track(lib / "talk.mp4", TRACK, root)
    segments_video(lib / "film.mp4", [(4, "triangle", "green"), (3, "circle", "yellow")])
    (lib / "film.srt").write_text(srt(SIDECAR), encoding="utf-8")
    segments_video(lib / "plain.mp4", [(3, "square", "red")])
    return lib


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    return make_library(tmp_path_factory.mktemp("spoken"))


@pytest.fixture(scope="module")
def index(library, tiny_model, tmp_path_factory):
    idx = vidsearch.Index(tmp_path_factory.mktemp("spoken-index") / "index", model=tiny_model)
    idx.add([library])
    yield idx
    idx.close()


def source(idx, name: str):
    return next(s for s in idx.sources() if os.path.basename(s.path) == name)


def lines(idx, name: str) -> list[tuple]:
    return [(ln.start, ln.end, ln.layer, ln.origin, ln.text) for ln in idx.transcript(source(idx, name).id)]


def fresh_copy(library: Path, tmp_path: Path, tiny_model: str) -> tuple[Path, vidsearch.Index]:
    lib = tmp_path / "library"
    shutil.copytree(library, lib)
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    idx.add([lib])
    return lib, idx


def reopened(idx: vidsearch.Index) -> vidsearch.Index:
    idx.close()
    return vidsearch.Index(idx.path)


# -- the catalog's transcript lines ------------------------------------------------------------------------------

def test_subtitles_of_a_track_and_of_a_sidecar_are_read_at_indexing_with_their_times(index):
    assert lines(index, "talk.mp4") == [(a, b, "subtitle", "talk.mp4 subtitle track #1 (und)", t)
                                        for a, b, t in TRACK]
    assert lines(index, "film.mp4") == [(2.0, 3.5, "subtitle", "film.srt", "The quarterly budget is tight"),
                                        (5.0, 6.5, "subtitle", "film.srt", "Café déjà vu, again")]
    assert lines(index, "plain.mp4") == []
    last = index.stats().last_run
    assert last["transcribed"] == 3 and last["problems"] == []
    assert index.stats().subtitle_lines == 4 and index.stats().said_lines == 0 and index.speech is None


def test_a_changed_sidecar_is_read_again_without_embedding_anything(library, tmp_path, tiny_model):
    lib, idx = fresh_copy(library, tmp_path, tiny_model)
    frames = {s.path: idx.frames(s.id)[0] for s in idx.sources()}
    (lib / "film.srt").write_text(srt([(1.0, 2.0, "A brand new line")]))
    os.utime(lib / "film.srt", (1, 1))  # another mtime whatever the clock's resolution
    idx = reopened(idx)
    report = idx.add([lib])
    assert idx._embedder is None  # no model was even loaded
    assert (report.added, report.unchanged, report.transcribed) == ([], 3, 1)
    assert {s.path: idx.frames(s.id)[0] for s in idx.sources()} == frames
    assert lines(idx, "film.mp4") == [(1.0, 2.0, "subtitle", "film.srt", "A brand new line")]
    assert idx.add([lib]).transcribed == 0  # read once
    (lib / "film.en.vtt").write_text("WEBVTT\n\n00:00.500 --> 00:01.000\nAnother language\n")  # one more
    assert idx.add([lib]).transcribed == 1
    assert [ln[4] for ln in lines(idx, "film.mp4")] == ["Another language", "A brand new line"]
    (lib / "film.srt").unlink()
    (lib / "film.en.vtt").unlink()
    assert idx.add([lib]).transcribed == 1 and lines(idx, "film.mp4") == []
    assert idx._embedder is None
    idx.close()


def test_a_bad_subtitle_file_is_reported_by_name_and_its_video_is_indexed(library, tmp_path, tiny_model):
    lib = tmp_path / "library"
    segments_video(lib / "clip.mp4", [(2, "circle", "red")])
    (lib / "clip.srt").write_text(srt([(0.5, 1.5, "Readable line")]) + "2\nnot a time\nLost line\n")
    (lib / "clip.ass").write_bytes(b"\x00\xff" * 10)
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    report = idx.add([lib])
    assert report.added == [str(lib / "clip.mp4")]
    assert [p for p, _ in report.problems] == [str(lib / "clip.mp4")] * len(report.problems)
    assert report.problems and all("clip.ass" in x or "clip.srt" in x for _, x in report.problems)
    assert [ln[4] for ln in lines(idx, "clip.mp4")] == ["Readable line"]
    idx.close()


def test_removing_a_video_drops_its_lines_from_the_catalog_and_the_full_text_index(library, tmp_path, tiny_model):
    lib, idx = fresh_copy(library, tmp_path, tiny_model)
    film = source(idx, "film.mp4")
    assert idx.remove(lib / "film.mp4")
    idx.close()
    with sqlite3.connect(tmp_path / "index" / CATALOG) as db:
        assert db.execute("SELECT count(*) FROM lines WHERE source_id=?", (film.id,)).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM transcribed WHERE source_id=?", (film.id,)).fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM lines_fts WHERE lines_fts MATCH 'budget'").fetchone() == (0,)
        assert db.execute("SELECT count(*) FROM lines_fts WHERE lines_fts MATCH 'lisbon'").fetchone() == (1,)


def test_a_format_7_index_is_migrated_and_its_subtitles_read_with_nothing_embedded(library, tmp_path, tiny_model):
    lib, idx = fresh_copy(library, tmp_path, tiny_model)
    idx.close()
    with sqlite3.connect(tmp_path / "index" / CATALOG) as db:  # as format 7 left it
        db.executescript("DROP TABLE lines; DROP TABLE lines_fts; DROP TABLE transcribed;"
                         "UPDATE meta SET value='7' WHERE key='format_version';")
    idx = vidsearch.Index(tmp_path / "index")
    assert idx._opened.catalog.read_meta()["format_version"] == SCHEMA_VERSION == 8
    assert idx.transcript(source(idx, "film.mp4").id) == []
    report = idx.add([lib])
    assert (report.added, report.transcribed) == ([], 3) and idx._embedder is None
    assert [ln[4] for ln in lines(idx, "talk.mp4")] == [t for _, _, t in TRACK]
    idx.close()


def test_an_offline_folder_keeps_its_lines(library, tmp_path, tiny_model):
    lib, idx = fresh_copy(library, tmp_path, tiny_model)
    before = lines(idx, "film.mp4")
    os.rename(lib, tmp_path / "away")
    lib.mkdir()  # there but empty: a drive not mounted
    report = idx.add([lib])
    assert report.offline and report.transcribed == 0
    assert lines(idx, "film.mp4") == before
    idx.close()


# -- one ranking ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("query", "name", "span", "text"), [
    ('"moved to Lisbon"', "talk.mp4", (4.0, 6.0), "We moved to Lisbon in the spring"),
    ("harbour tour", "talk.mp4", (1.0, 2.5), "Welcome to the harbour tour"),
    ("quarterly budget", "film.mp4", (2.0, 3.5), "The quarterly budget is tight"),
    ("CAFE DEJA", "film.mp4", (5.0, 6.5), "Café déjà vu, again"),  # case and accents do not matter
])
def test_a_phrase_from_the_subtitles_finds_its_moment_first_with_the_lines_bounds(index, query, name, span, text):
    hits = index.search(query, min_score=-1)
    top = hits[0]
    assert (os.path.basename(top.source), (top.start, top.end)) == (name, span)
    assert top.lines == [{"layer": "subtitle", "text": text, "start": span[0], "end": span[1]}]
    assert span[0] - index.interval <= top.t < span[1]  # shown by a frame of the line
    assert all(not h.lines for h in hits[1:])  # one line, one moment


def test_a_moment_matched_in_more_layers_ranks_above_one_matched_in_fewer(tmp_path, tiny_model):
    """The same line in two videos, over a red circle in one and a blue square in the other, and a third video of a
    red circle with no line: said and seen > said only > seen only."""
    lib = tmp_path / "library"
    segments_video(lib / "red.mp4", [(3, "square", "blue"), (3, "circle", "red")])
    segments_video(lib / "blue.mp4", [(3, "circle", "red"), (3, "square", "blue")])
    segments_video(lib / "seen.mp4", [(6, "circle", "red")])
    for name in ("red", "blue"):
        (lib / f"{name}.srt").write_text(srt([(3.0, 6.0, "look over here")]))
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    idx.add([lib])
    hits = idx.search('a red circle "look over here"', min_score=-1)
    assert [(os.path.basename(h.source), h.start, h.end, bool(h.lines)) for h in hits[:3]] == [
        ("red.mp4", 3.0, 6.0, True), ("blue.mp4", 3.0, 6.0, True), ("seen.mp4", 0.0, 6.0, False)]
    assert hits[0].score >= idx.min_score > hits[1].score  # the picture matches in the first only
    idx.close()


def test_a_quoted_phrase_matches_only_as_written(index):
    assert index.search('"Lisbon moved"', min_score=-1)[0].lines == []
    assert index.search('"moved to Lisbon" something blue', min_score=-1)[0].lines[0]["start"] == 4.0


def test_the_json_api_and_the_cli_show_the_matched_line(index):
    client = create_app(index).test_client()
    got = client.get("/api/search?q=lisbon&min_score=-1").get_json()
    assert got["hits"][0]["lines"] == [{"layer": "subtitle", "text": "We moved to Lisbon in the spring",
                                        "start": 4.0, "end": 6.0}]
    assert (got["hits"][0]["start"], got["hits"][0]["end"]) == (4.0, 6.0)
    assert "lines" not in got["hits"][1]
    page = client.get("/?q=lisbon&min_score=-1").get_data(as_text=True)
    assert "Subtitle: <q>We moved to Lisbon in the spring</q>" in page
    runner = CliRunner()
    out = runner.invoke(main, ["search", "lisbon", "--index", str(index.path), "--min-score", "-1"])
    assert out.exit_code == 0
    first = out.output.splitlines()[:2]
    assert "0:04–0:06" in first[0] and "talk.mp4" in first[0]
    assert first[1].strip() == 'subtitle: "We moved to Lisbon in the spring"'
    hits = json.loads(runner.invoke(main, ["search", "quarterly budget", "--index", str(index.path), "--json"]).output)
    assert hits[0]["lines"][0]["text"] == "The quarterly budget is tight" and hits[0]["source"] == "film.mp4"


@pytest.mark.parametrize("query", ['"', '"unclosed', 'budget"*', "NEAR(quarterly budget)", "budget*", "^budget",
                                   "(budget", "budget)", "text:budget", "- budget", "budget OR tight", "budget AND",
                                   "NOT budget", "{text}: budget", "'; DROP TABLE lines; --", "\\0", "ß" * 300,
                                   "日本語の字幕", "l\u0131sbon"])
def test_hostile_queries_never_reach_fts_syntax(index, query):
    for hit in index.search(query, min_score=-1):
        assert all(line["layer"] == "subtitle" for line in hit.lines)
    assert create_app(index).test_client().get("/api/search", query_string={"q": query}).status_code == 200


def test_an_index_without_lines_ranks_as_before(index, monkeypatch):
    """A query no line matches gives exactly what the search gave before there were lines to match."""
    from vidsearch.search import words

    queries = ["a red circle", "something blue", "budget tight green"]  # the last: no line holds all three
    now = [[(h.source, h.start, h.end, h.score) for h in index.search(q, min_score=-1)] for q in queries]
    monkeypatch.setattr(words, "LAYERS", (words.WordsOnScreen,))
    assert now == [[(h.source, h.start, h.end, h.score) for h in index.search(q, min_score=-1)] for q in queries]


def test_the_watch_page_marks_the_moment_of_the_line(index):
    talk = source(index, "talk.mp4")
    moments = index.video(talk.id, "lisbon", min_score=-1)[1]
    assert (moments[0].start, moments[0].end) == (4.0, 6.0) and moments[0].lines


# -- speech --------------------------------------------------------------------------------------------------------

def test_an_engine_that_cannot_be_had_is_one_sentence_and_exit_2(library, tmp_path, tiny_model):
    runner = CliRunner()
    index = str(tmp_path / "index")
    out = runner.invoke(main, ["index", str(library), "--index", index, "--model", tiny_model,
                               f"--speech=whisper:{tmp_path / 'nowhere'}"])
    assert out.exit_code == 2 and "could not be loaded" in out.output and "whisper:/" in out.output
    assert not (tmp_path / "index").exists()
    out = runner.invoke(main, ["index", str(library), "--index", index, "--speech=deepspeech"])
    assert out.exit_code == 2 and "Unknown speech engine 'deepspeech'" in out.output
    out = runner.invoke(main, ["index", "--speech", str(library), "--index", index])
    assert out.exit_code == 2 and "put --speech after the paths" in out.output
    out = runner.invoke(main, ["index", str(library), "--index", index, "--speech", "--no-speech"])
    assert out.exit_code == 2 and "opposite" in out.output
    out = runner.invoke(main, ["serve", "--index", index, "--speech", "pocketsphinx"])
    assert out.exit_code == 2 and "--speech goes with the folders to index" in out.output
    assert not (tmp_path / "index").exists()


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> tuple[Path, list[tuple[float, float, str]]]:
    """A folder with a video whose sound says SPOKEN's phrases: (folder, [(from, to, words)] of when each was said)."""
    if ESPEAK is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng): there is no speech to hear")
    pytest.importorskip("pocketsphinx", reason="pocketsphinx comes with the speech extra: pip install '.[speech]'")
    parts, said, rate, t = [], [], 22050, 0.0
    for silence, phrase, words in SPOKEN:
        out = subprocess.run([ESPEAK, "-v", "en-us", "-s", "120", "--stdout", phrase], capture_output=True, check=True)
        with wave.open(io.BytesIO(out.stdout)) as w:
            samples, rate = np.frombuffer(w.readframes(w.getnframes()), np.int16), w.getframerate()
        parts += [np.zeros(int(silence * rate), np.int16), samples]
        said.append((t + silence, t + silence + len(samples) / rate, words))
        t += silence + len(samples) / rate
    parts.append(np.zeros(2 * rate, np.int16))
    lib = tmp_path_factory.mktemp("said") / "library"
    lib.mkdir()
    with wave.open(str(lib.parent / "said.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate(parts).tobytes())
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=blue:s=160x120:r=5", "-i",
                    str(lib.parent / "said.wav"), "-shortest", "-c:v", "libx264", "-c:a", "aac", str(lib / "said.mp4")],
                   check=True)
    return lib, said


def test_speech_switched_on_is_heard_in_what_is_indexed_kept_and_stopped(spoken, tmp_path, tiny_model):
    lib, said = spoken
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    assert idx.add([lib]).transcribed == 1 and lines(idx, "said.mp4") == []  # no subtitles, no speech heard
    idx = reopened(idx)
    report = idx.add([lib], speech="pocketsphinx")
    assert (report.added, report.transcribed, idx._embedder) == ([], 1, None)  # heard, nothing embedded
    heard = lines(idx, "said.mp4")
    for start, end, words in said:
        (line,) = [ln for ln in heard if words in ln[4]]
        assert start - 0.5 <= line[0] < line[1] <= end + 0.5 and line[2:4] == ("said", "pocketsphinx")
    idx = reopened(idx)
    assert idx.speech == "pocketsphinx" and idx.stats().said_lines == len(heard)
    assert idx.add([lib]).transcribed == 0  # kept, and heard once
    start, end, words = said[1]
    top = idx.search(words, min_score=-1)[0]
    (line,) = top.lines
    assert line["layer"] == "said" and words in line["text"] and (top.start, top.end) == (line["start"], line["end"])
    assert start - 0.5 <= top.start < top.end <= end + 0.5  # the moment is the segment said
    idx.add([lib], speech=False)
    assert idx.speech is None and lines(idx, "said.mp4") == heard  # what was heard stays searchable
    idx.close()


def test_cli_index_speech_pocketsphinx_hears_new_videos_and_says_so(spoken, tmp_path, tiny_model):
    lib, said = spoken
    out = CliRunner().invoke(main, ["index", str(lib), "--index", str(tmp_path / "index"), "--model", tiny_model,
                                    "--speech", "pocketsphinx"])
    assert out.exit_code == 0, out.output
    assert re.search(r"Subtitles and speech: [1-9]\d* lines found in 1 videos looked at\.", out.output), out.output
    info = json.loads(CliRunner().invoke(main, ["info", "--index", str(tmp_path / "index"), "--json"]).output)
    assert info["speech"] == "pocketsphinx" and info["said_lines"] >= len(said)


def test_a_ray_run_reads_subtitles_in_the_writing_process(library, tmp_path, tiny_model):
    ray = pytest.importorskip("ray")
    lib = tmp_path / "library"
    shutil.copytree(library, lib)
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    ray.init(num_cpus=1, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        report = idx.add([lib], ray=True, ray_workers=1)
    finally:
        ray.shutdown()
    assert len(report.added) == 3 and report.transcribed == 3
    assert [ln[4] for ln in lines(idx, "film.mp4")] == ["The quarterly budget is tight", "Café déjà vu, again"]
    idx.close()


# -- the web ---------------------------------------------------------------------------------------------------------

def test_the_api_gives_a_videos_transcript_lines(index):
    client = create_app(index).test_client()
    film = source(index, "film.mp4")
    got = client.get(f"/api/transcript/{film.id}").get_json()
    assert got == {"source_id": film.id, "lines": [
        {"start": 2.0, "end": 3.5, "layer": "subtitle", "origin": "film.srt", "text": "The quarterly budget is tight"},
        {"start": 5.0, "end": 6.5, "layer": "subtitle", "origin": "film.srt", "text": "Café déjà vu, again"}]}
    assert client.get(f"/api/transcript/{source(index, 'plain.mp4').id}").get_json()["lines"] == []
    assert client.get("/api/transcript/999999").status_code == 404


def test_the_player_shows_the_transcript_marks_the_line_playing_and_seeks_on_a_click(index):
    talk = source(index, "talk.mp4")
    with serving(create_app(index)) as base, chromium() as browser, checked_page(browser) as page:
        page.goto(f"{base}/watch/{talk.id}?q=lisbon&t=0")
        page.wait_for_selector("#transcript:not([hidden]) #transcript-lines li")
        rows = page.locator("#transcript-lines li")
        assert rows.count() == 2
        assert "0:01" in rows.nth(0).inner_text() and "Welcome to the harbour tour" in rows.nth(0).inner_text()
        assert "match" in rows.nth(1).get_attribute("class") and "match" not in (rows.nth(0).get_attribute("class")
                                                                                or "")
        page.wait_for_function("() => document.getElementById('player').readyState >= 1")
        page.evaluate("() => document.getElementById('player').pause()")
        rows.nth(1).locator("a").click()
        # it plays from the line's start: somewhere inside the line by the time it is looked at
        page.wait_for_function("() => { const t = document.getElementById('player').currentTime; "
                               "return 4 <= t && t < 6; }")
        page.evaluate("() => document.getElementById('player').pause()")
        page.wait_for_function("() => document.querySelector('#transcript-lines li:nth-child(2) a')"
                               ".getAttribute('aria-current') === 'true'")
        page.evaluate("() => { document.getElementById('player').currentTime = 1.5; }")
        page.wait_for_function("() => document.querySelector('#transcript-lines li:nth-child(1) a')"
                               ".getAttribute('aria-current') === 'true'")
        assert page.locator("#transcript-lines a[aria-current]").count() == 1
        page.fill("#transcript-search", "HARBOUR")
        page.wait_for_function("() => document.querySelector('#transcript-lines li:nth-child(2)').hidden")
        assert page.locator("#transcript-count").inner_text() == "1 of 2 lines"
        page.goto(f"{base}/watch/{source(index, 'plain.mp4').id}")
        page.wait_for_function("() => document.getElementById('player').readyState >= 1")
        assert page.locator("#transcript").is_hidden()
