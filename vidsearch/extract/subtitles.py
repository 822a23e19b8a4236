"""Subtitles read from files beside a video and from text tracks inside it: always, with no model and no option.

Sidecar files: `movie.srt`, `.vtt`, `.ass`, `.ssa` beside `movie.mp4`, also with tags between the name and the
extension (`movie.en.srt`, `movie.eng.forced.srt`, `movie.pt-BR.sdh.vtt`); see `sidecars` for the exact rule.
Tracks: mov_text, SubRip, ASS/SSA, WebVTT and plain-text tracks in the container, converted by ffmpeg (the binary
imageio-ffmpeg ships) to ASS, the form ffmpeg itself holds text subtitles in, so no styling or timing is lost on
the way; one ffmpeg run reads every text track of a video. Picture subtitles (DVD, PGS, DVB) are not text: noted,
not read. pysubs2 parses every format; this module picks the text encoding, strips markup and repairs times.

Nothing here raises for a bad subtitle: each call returns a `Transcript` whose `problems` name the file or track
that could not be read (or read only in part), beside everything that could. Reading is bounded: the first
MAX_BYTES of a file or track and its first MAX_CUES cues.
"""
from __future__ import annotations

import html
import re
import subprocess
import tempfile
from pathlib import Path

import imageio_ffmpeg
import pysubs2

from ..transcript import SUBTITLE, Segment, Transcript, repair

EXTENSIONS = (".srt", ".vtt", ".ass", ".ssa")
TEXT_CODECS = {"mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text"}
MAX_BYTES = 20 << 20
MAX_CUES = 100_000
FFMPEG_TIMEOUT = 600  # seconds for one video's tracks: the whole file is read to reach the subtitle packets
# A tag between a video's name and a sidecar's extension: a language (en, eng, pt-BR, zh_Hans) or a kind.
TAG = re.compile(r"[a-z]{2,3}([-_][a-z0-9]{2,4})?|forced|sdh|cc|hi|default|full|sub|subs", re.I)
BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe\x00\x00", "utf-32-le"), (b"\x00\x00\xfe\xff", "utf-32-be"),
        (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
TAGS = re.compile(r"</?[a-zA-Z][^<>]*>|<\d[\d:.]*>")  # HTML-like tags pysubs2 leaves in (VTT <v>, <c>, <00:01.5>)


def sidecars(video: Path) -> list[Path]:
    """The subtitle files beside `video`, sorted by name.

    A file belongs to the video when its name, less a subtitle extension (any case), is the video's name less its
    extension, alone or followed by dot-separated tags (TAG: a language code or forced/sdh/cc/...), compared
    without case. When several files in the folder could own it (`clip.en.srt` beside `clip.mp4` and
    `clip.en.mp4`), the one with the longest name does. Raises OSError when the folder cannot be listed."""
    entries = list(video.parent.iterdir())
    subs = [p for p in entries if p.suffix.lower() in EXTENSIONS]
    own = video.stem.casefold()
    stems = {own} | {p.stem.casefold() for p in entries if p.suffix.lower() not in EXTENSIONS}
    return sorted(p for p in subs if _owner(p.stem.casefold(), stems) == own and p.is_file())


def _owner(base: str, stems: set[str]) -> str | None:
    parts = base.split(".")
    for cut in range(len(parts), 0, -1):  # the longest owner first
        stem = ".".join(parts[:cut])
        if stem in stems and all(TAG.fullmatch(t) for t in parts[cut:]):
            return stem
    return None


def sidecar_stamps(video: Path) -> dict[str, tuple[int, float]] | None:
    """{file name: (size, mtime)} of the video's sidecar files, to tell a changed, new or removed sidecar like a
    changed video; None when the folder cannot be listed (offline: not a sign that the sidecars are gone)."""
    try:
        out = {}
        for p in sidecars(video):
            st = p.stat()
            out[p.name] = (st.st_size, st.st_mtime)
        return out
    except OSError:
        return None


def read_subtitles(video: Path) -> Transcript:
    """Every subtitle of `video`: its text tracks, then its sidecar files, each repaired on its own."""
    out = read_tracks(video)
    try:
        files = sidecars(video)
    except OSError as e:
        out.problems.append(f"The folder of {video.name} could not be listed for subtitle files ({e.strerror}).")
        files = []
    for path in files:
        out.extend(read_sidecar(path))
    return out


def read_sidecar(path: Path) -> Transcript:
    """The cues of one subtitle file (SRT, WebVTT, ASS/SSA, whatever its extension says), in any encoding."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        return Transcript(problems=[f"Subtitle file {path.name} could not be read ({e.strerror})."])
    problems = []
    if len(data) > MAX_BYTES:
        data = data[:MAX_BYTES]
        problems.append(f"Subtitle file {path.name} is over {MAX_BYTES >> 20} MB: only its first "
                        f"{MAX_BYTES >> 20} MB were read.")
    out = parse(decode(data), path.name)
    out.problems[:0] = problems
    return out


def decode(data: bytes) -> str:
    """Text of a subtitle file: a BOM says the encoding; else UTF-16 when every other byte is zero; else UTF-8;
    else Windows-1252 (Western files older than UTF-8: cp1252 is a superset of Latin-1's printable characters),
    else Latin-1, which decodes any byte."""
    for bom, encoding in BOMS:
        if data.startswith(bom):
            return data[len(bom):].decode(encoding, errors="replace")
    sample = data[:4096]
    if len(sample) >= 4 and sample[1::2].count(0) > len(sample) // 3:
        return data.decode("utf-16-le", errors="replace")
    if len(sample) >= 4 and sample[0::2].count(0) > len(sample) // 3:
        return data.decode("utf-16-be", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start >= len(data) - 3:  # a character cut by the size bound
            return data[:e.start].decode("utf-8")
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def parse(text: str, source: str, fmt: str | None = None) -> Transcript:
    """Cues of subtitle text as repaired segments; problems name `source`."""
    try:
        subs = pysubs2.SSAFile.from_string(text, format_=fmt)
    except Exception as e:  # pysubs2 raises its own errors, ValueError and more on broken files
        return Transcript(problems=[f"Subtitles in {source} could not be read ({_reason(e)})."])
    problems, cues, broken = [], [], 0
    events = [e for e in subs if not e.is_comment and not e.is_drawing]
    if len(events) > MAX_CUES:
        problems.append(f"Subtitles in {source} have {len(events)} cues: only the first {MAX_CUES} were read.")
        events = events[:MAX_CUES]
    for event in events:
        line, lost = clean(event.plaintext, subs.format in ("srt", "vtt"))
        broken += lost
        cues.append(Segment(event.start / 1000, event.end / 1000, line, SUBTITLE, source))
    if broken:
        problems.append(f"Subtitles in {source}: {broken} cue(s) with unreadable times were left out.")
    if not events and text.strip():
        problems.append(f"Subtitles in {source} hold no cue that could be read.")
    return Transcript(repair(cues), problems)


def clean(plain: str, cues_end_at_blank: bool) -> tuple[str, int]:
    """(text, cues lost): the text of a cue less its markup. In SRT and WebVTT, a blank line or a `-->` line inside
    one cue is where pysubs2 ran a following cue with unreadable times into it: that cue is cut off and counted."""
    lines, lost = [], 0
    for line in plain.replace("\\h", " ").splitlines():
        if cues_end_at_blank and ("-->" in line or (not line.strip() and lines)):
            lost = 1
            break
        lines.append(line)
    text = html.unescape(TAGS.sub("", "\n".join(lines)))
    return text.strip(), lost


def _reason(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:200]


def text_tracks(video: Path) -> tuple[list[tuple[int, str]], list[str]]:
    """([(stream index, label)], problems) for the video's subtitle tracks: text ones to read, picture ones noted."""
    import av

    tracks, problems = [], []
    try:
        with av.open(str(video)) as container:
            for stream in container.streams.subtitles:
                codec = stream.codec_context.name
                label = f"{video.name} subtitle track #{stream.index}"
                if lang := stream.metadata.get("language"):
                    label += f" ({lang})"
                if codec in TEXT_CODECS:
                    tracks.append((stream.index, label))
                else:
                    problems.append(f"{label} holds pictures ({codec}), not text: it was not read.")
    except Exception as e:  # any container PyAV cannot open: no tracks, the video's own error is reported elsewhere
        problems.append(f"Subtitle tracks of {video.name} could not be listed ({_reason(e)}).")
    return tracks, problems


def read_tracks(video: Path) -> Transcript:
    """The cues of every text subtitle track inside `video`, each track its own source."""
    tracks, problems = text_tracks(video)
    out = Transcript(problems=problems)
    if not tracks:
        return out
    with tempfile.TemporaryDirectory(prefix="vidsearch-subs-") as tmp:
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-i", str(video)]
        for index, _ in tracks:
            cmd += ["-map", f"0:{index}", "-c:s", "ass", "-f", "ass", str(Path(tmp) / f"{index}.ass")]
        try:
            run = subprocess.run(cmd, capture_output=True, timeout=FFMPEG_TIMEOUT)
            failed = run.returncode != 0 and _reason(ValueError(run.stderr.decode(errors="replace")))
        except (OSError, subprocess.TimeoutExpired) as e:
            failed = _reason(e)
        for index, label in tracks:
            path = Path(tmp) / f"{index}.ass"
            if path.is_file() and path.stat().st_size:
                with open(path, "rb") as f:
                    out.extend(parse(decode(f.read(MAX_BYTES)), label, "ass"))
            elif failed:
                out.problems.append(f"{label} could not be read ({failed}).")
    return out
