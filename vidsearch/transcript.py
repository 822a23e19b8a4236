"""What is said in a video, as timed lines: the one result type of subtitles (extract.subtitles) and speech (speech).

A transcript is a list of `Segment`s sorted by start, each with its time span in seconds, its text, its layer
("subtitle": written by a person, read from a subtitle file or track; "said": heard by a speech engine), where it
came from, and word times where the engine gives them. `repair` makes any list of cues into such a list.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

SUBTITLE = "subtitle"
SAID = "said"
# A cue whose end is missing or before its start is shown this long (or until the next cue): about the time it
# takes to read a subtitle line.
READING_TIME = 3.0
SAME_START = 0.01  # seconds: cues starting this close together are one cue split over several entries


@dataclass(frozen=True)
class Word:
    text: str
    start: float
    end: float


@dataclass(frozen=True)
class Segment:
    """A line said or shown from `start` to `end` seconds; `source` names where it came from (a sidecar file's name,
    a container track, a speech engine)."""

    start: float
    end: float
    text: str
    layer: str
    source: str = ""
    words: tuple[Word, ...] = ()

    def as_json(self) -> dict:
        out = {"start": self.start, "end": self.end, "text": self.text, "layer": self.layer, "source": self.source}
        if self.words:
            out["words"] = [[w.text, w.start, w.end] for w in self.words]
        return out


@dataclass
class Transcript:
    """The segments read from one video, and one sentence for each thing that could not be read (naming the
    file or track): reading subtitles or speech reports problems, it never raises them."""

    segments: list[Segment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def extend(self, other: Transcript) -> None:
        self.segments = sorted([*self.segments, *other.segments], key=_order)
        self.problems += other.problems


def _order(s: Segment) -> tuple:
    return s.start, s.end, s.source


def repair(cues: Iterable[Segment]) -> list[Segment]:
    """Cues of ONE source, in any order and with any times, as sorted segments that do not overlap.

    Empty text is dropped; a negative start becomes 0; an end missing or before its start becomes start +
    READING_TIME; cues starting together (one cue split over entries) are joined into one line; a cue still shown
    when the next one starts ends there (so each moment has one line: a search hit points at the line said then);
    the same text repeated back to back is one segment. Word times are kept inside their segment."""
    out: list[Segment] = []
    for cue in sorted(_fixed(cues), key=_order):
        prev = out[-1] if out else None
        if prev is not None and cue.text == prev.text and cue.start <= prev.end:
            out[-1] = replace(prev, end=max(prev.end, cue.end), words=prev.words + cue.words)
        elif prev is not None and cue.start - prev.start < SAME_START:
            out[-1] = replace(prev, end=max(prev.end, cue.end), text=f"{prev.text}\n{cue.text}",
                              words=prev.words + cue.words)
        else:
            if prev is not None and prev.end > cue.start:
                out[-1] = _clip(prev, prev.start, cue.start)
            out.append(cue)
    return out


def _fixed(cues: Iterable[Segment]) -> Iterable[Segment]:
    for cue in cues:
        text = "\n".join(line.strip() for line in cue.text.splitlines() if line.strip())
        if not text:
            continue
        start = max(0.0, cue.start)
        end = cue.end if cue.end > start else start + READING_TIME
        yield _clip(replace(cue, text=text), start, end)


def _clip(seg: Segment, start: float, end: float) -> Segment:
    words = tuple(Word(w.text, min(max(w.start, start), end), min(max(w.end, start), end)) for w in seg.words)
    return replace(seg, start=start, end=end, words=words)
