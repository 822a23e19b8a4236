"""Subtitles read from sidecar files and container tracks: messy files give what can be read, never an exception."""
import subprocess
from pathlib import Path

import pytest
from media import FFMPEG

from vidsearch.extract import subtitles
from vidsearch.extract.subtitles import read_sidecar, read_subtitles, read_tracks, sidecar_stamps, sidecars
from vidsearch.transcript import READING_TIME, SUBTITLE, Segment, Word, repair

SRT = """1
00:00:00,500 --> 00:00:01,500
<i>Hello</i> <font color="#ff0000">world</font>

2
00:00:02,000 --> 00:00:03,250
{\\an8}The second\\Nline
"""


def video(path: Path, *inputs: str, extra: tuple = ()) -> Path:
    """A 4 s video from ffmpeg's test source, with the given inputs muxed in (subtitle files)."""
    cmd = [FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=blue:s=160x120:d=4:r=10"]
    for i in inputs:
        cmd += ["-i", i]
    for n in range(len(inputs) + 1):
        cmd += ["-map", str(n)]
    subprocess.run([*cmd, "-c:v", "libx264", *extra, str(path)], check=True)
    return path


def spans(transcript):
    return [(s.start, s.end, s.text) for s in transcript.segments]


def write(path: Path, text: str, encoding="utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_an_embedded_mov_text_track_is_read_with_its_times_and_language(tmp_path):
    srt = write(tmp_path / "in.srt", SRT)
    mp4 = video(tmp_path / "clip.mp4", str(srt), extra=("-c:s", "mov_text", "-metadata:s:s:0", "language=fra"))
    out = read_tracks(mp4)
    assert out.problems == []
    assert spans(out) == [(0.5, 1.5, "Hello world"), (2.0, 3.25, "The second\nline")]
    assert {s.source for s in out.segments} == {"clip.mp4 subtitle track #1 (fra)"}
    assert {s.layer for s in out.segments} == {SUBTITLE}


@pytest.mark.parametrize("codecs", [("srt", "ass"), ("ass", "webvtt")])
def test_several_tracks_of_a_matroska_file_are_each_their_own_source(tmp_path, codecs):
    a = write(tmp_path / "a.srt", SRT)
    b = write(tmp_path / "b.srt", "1\n00:00:01,000 --> 00:00:02,000\n<b>Zweite</b> Spur\n")
    mkv = video(tmp_path / "two.mkv", str(a), str(b), extra=("-c:s:0", codecs[0], "-c:s:1", codecs[1]))
    out = read_tracks(mkv)
    assert out.problems == []
    assert [(s.start, s.end, s.text, s.source) for s in out.segments] == [
        (0.5, 1.5, "Hello world", "two.mkv subtitle track #1"), (1.0, 2.0, "Zweite Spur", "two.mkv subtitle track #2"),
        (2.0, 3.25, "The second\nline", "two.mkv subtitle track #1")]


def test_a_video_with_a_sidecar_gets_its_cues_and_one_without_subtitles_gets_none(tmp_path):
    mp4 = video(tmp_path / "movie.mp4")
    assert read_subtitles(mp4).segments == [] and read_subtitles(mp4).problems == []
    write(tmp_path / "movie.srt", SRT)
    out = read_subtitles(mp4)
    assert spans(out) == [(0.5, 1.5, "Hello world"), (2.0, 3.25, "The second\nline")]
    assert {s.source for s in out.segments} == {"movie.srt"} and out.problems == []


def test_the_sidecar_matching_rule(tmp_path):
    names = ["movie.srt", "movie.en.srt", "Movie.eng.forced.SRT", "movie.pt-BR.sdh.vtt", "movie.ass", "movie.ssa",
             "movie.part2.srt", "movie2.srt", "other.srt", "movie.srt.bak", "clip.en.srt", "clip.srt"]
    for name in names:
        (tmp_path / name).write_text("")
    (tmp_path / "clip.en.mp4").write_bytes(b"")  # clip.en.srt belongs to it, not to clip.mp4
    (tmp_path / "movie.part2.mp4").write_bytes(b"")
    (tmp_path / "movie.de.srt").mkdir()  # not a file
    got = [p.name for p in sidecars(tmp_path / "movie.mkv")]
    assert got == sorted(["movie.srt", "movie.en.srt", "Movie.eng.forced.SRT", "movie.pt-BR.sdh.vtt", "movie.ass",
                          "movie.ssa"])
    assert [p.name for p in sidecars(tmp_path / "clip.mp4")] == ["clip.srt"]
    assert [p.name for p in sidecars(tmp_path / "clip.en.mp4")] == ["clip.en.srt"]


def test_sidecar_stamps_tell_a_changed_or_removed_sidecar_and_an_offline_folder(tmp_path):
    mp4 = tmp_path / "movie.mp4"
    mp4.write_bytes(b"")
    srt = write(tmp_path / "movie.en.srt", SRT)
    before = sidecar_stamps(mp4)
    assert before == {"movie.en.srt": (srt.stat().st_size, srt.stat().st_mtime)}
    write(srt, SRT + "\n3\n00:00:04,000 --> 00:00:05,000\nmore\n")
    assert sidecar_stamps(mp4) != before
    srt.unlink()
    assert sidecar_stamps(mp4) == {}
    assert sidecar_stamps(tmp_path / "gone" / "movie.mp4") is None


@pytest.mark.parametrize("encoding,prefix", [("latin-1", b""), ("cp1252", b""), ("utf-8", b"\xef\xbb\xbf"),
                                             ("utf-16-le", b"\xff\xfe"), ("utf-16-be", b"\xfe\xff"),
                                             ("utf-16-le", b"")])
def test_text_encodings(tmp_path, encoding, prefix):
    text = "1\r\n00:00:01,000 --> 00:00:02,000\r\nCafé crème, déjà vu\r\n"
    if encoding == "cp1252":
        text = text.replace("déjà vu", "“déjà vu”")
    path = tmp_path / "x.srt"
    path.write_bytes(prefix + text.encode(encoding))
    out = read_sidecar(path)
    assert spans(out) == [(1.0, 2.0, text.splitlines()[2])] and out.problems == []


def test_overlapping_reversed_negative_and_empty_cues_are_repaired(tmp_path):
    path = write(tmp_path / "x.srt", """1
00:00:05,000 --> 00:00:08,000
Overlaps the next

2
00:00:06,000 --> 00:00:07,000
Next

3
00:00:10,000 --> 00:00:09,000
Reversed

4
00:00:20,000 --> 00:00:21,000


5
00:00:30,000 --> 00:00:31,000
Repeated

6
00:00:30,500 --> 00:00:32,000
Repeated

7
00:00:40,000 --> 00:00:41,000
Top

8
00:00:40,000 --> 00:00:42,000
Bottom
""")
    out = read_sidecar(path)
    assert spans(out) == [(5.0, 6.0, "Overlaps the next"), (6.0, 7.0, "Next"), (10.0, 10.0 + READING_TIME, "Reversed"),
                          (30.0, 32.0, "Repeated"), (40.0, 42.0, "Top\nBottom")]
    assert out.problems == []


def test_a_broken_cue_among_good_ones_is_left_out_and_reported(tmp_path):
    path = write(tmp_path / "broken.srt", """1
00:00:01,000 --> 00:00:02,000
Good one

2
00:00:0x,000 --> what
Broken

3
00:00:03,000 --> 00:00:04,000
Good two
""")
    out = read_sidecar(path)
    assert spans(out) == [(1.0, 2.0, "Good one"), (3.0, 4.0, "Good two")]
    assert len(out.problems) == 1 and "broken.srt" in out.problems[0] and "1 cue" in out.problems[0]


def test_ass_override_codes_comments_and_drawings_are_not_text(tmp_path):
    path = write(tmp_path / "x.ass", """[Script Info]
ScriptType: v4.00+

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, \
Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, \
MarginV, Encoding
Style: Default,Arial,20,&H00FFFFFF,&H000000FF,&H00000000,&H00000000,0,0,0,0,100,100,0,0,1,2,2,2,10,10,10,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
Dialogue: 0,0:00:01.00,0:00:02.50,Default,,0,0,0,,{\\an8}{\\i1}Up\\hthere{\\i0}\\Nsecond line
Comment: 0,0:00:03.00,0:00:04.00,Default,,0,0,0,,a note for the typesetter
Dialogue: 0,0:00:05.00,0:00:06.00,Default,,0,0,0,,{\\p1}m 0 0 l 100 0 100 100 0 100{\\p0}
Dialogue: 0,0:00:07.00,0:00:08.00,Default,,0,0,0,,{\\fad(200,200)\\c&H00FF00&}Green {\\b1}bold{\\b0} words
""")
    out = read_sidecar(path)
    assert spans(out) == [(1.0, 2.5, "Up there\nsecond line"), (7.0, 8.0, "Green bold words")]
    assert out.problems == []


def test_webvtt_cue_settings_voice_tags_timestamps_and_entities(tmp_path):
    path = write(tmp_path / "x.vtt", """WEBVTT

NOTE written by hand

intro
00:00:01.000 --> 00:00:02.000 align:start position:10%
<v Roger>Hi <c.yellow>you</c> &amp; me

00:03.000 --> 00:04.000
<00:00:03.500>timed <b>words</b>
""")
    out = read_sidecar(path)
    assert spans(out) == [(1.0, 2.0, "Hi you & me"), (3.0, 4.0, "timed words")]


def test_garbage_missing_and_huge_files_give_problems_not_exceptions(tmp_path, monkeypatch):
    garbage = tmp_path / "g.srt"
    garbage.write_bytes(bytes(range(256)) * 50)
    out = read_sidecar(garbage)
    assert out.segments == [] and len(out.problems) == 1 and "g.srt" in out.problems[0]
    out = read_sidecar(tmp_path / "missing.srt")
    assert out.segments == [] and "missing.srt" in out.problems[0]
    cue = "{n}\n00:00:{n:02d},000 --> 00:00:{n:02d},500\nLine {n}\n\n"
    big = write(tmp_path / "big.srt", "".join(cue.format(n=n) for n in range(1, 60)))
    monkeypatch.setattr(subtitles, "MAX_BYTES", 1000)
    out = read_sidecar(big)
    assert 20 < len(out.segments) < 59 and out.segments[0].text == "Line 1"
    assert "big.srt" in out.problems[0] and "only its first" in out.problems[0]
    monkeypatch.setattr(subtitles, "MAX_BYTES", 1 << 20)
    monkeypatch.setattr(subtitles, "MAX_CUES", 10)
    out = read_sidecar(big)
    assert [s.text for s in out.segments] == [f"Line {n}" for n in range(1, 11)]
    assert "59 cues" in out.problems[0]


def test_a_broken_video_gives_a_problem_not_an_exception(tmp_path):
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(b"not a video at all" * 100)
    write(tmp_path / "bad.srt", SRT)
    out = read_subtitles(bad)
    assert [s.source for s in out.segments] == ["bad.srt", "bad.srt"]
    assert len(out.problems) == 1 and "bad.mkv" in out.problems[0]


def test_repair_keeps_word_times_inside_their_segment():
    words = (Word("a", -1.0, 0.5), Word("b", 0.5, 9.0))
    got = repair([Segment(3.0, 4.0, "next", SUBTITLE), Segment(-2.0, 5.0, "a b", SUBTITLE, words=words)])
    assert [(s.start, s.end) for s in got] == [(0.0, 3.0), (3.0, 4.0)]
    assert got[0].words == (Word("a", 0.0, 0.5), Word("b", 0.5, 3.0))
