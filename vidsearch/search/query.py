"""The words of a search: what is asked (Query) and what comes back (Hit), the same in the Python API, the CLI and
the web."""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..format import fmt_span

ImageQuery = str | os.PathLike | Image.Image | np.ndarray
DateLike = dt.date | str
KINDS = ("video", "image")
PER_VIDEO = 3  # moments per video on a first page of results: the rest are one click away on the video's page


@dataclass
class Query:
    """What to search for, and how many results. The same words everywhere: the Python API, the web (whose URL
    parameters are short: q, neg, w_neg) and the CLI (--not, --w-not).

    The positive part is a weighted mix of `text`, `image` and `like` (a stored frame id: "more like this", no
    model pass); `negative` text pushes what it names down and out. `k` moments, best first, at most `per_video`
    from one video (0: no cap); `min_score` defaults to the index's.

    Filters choose the sources searched: `kind` ("video" or "image"), `folder` (an absolute path: the sources at it
    or under it, as the index stores them, symlinks resolved; a relative one is taken from the current directory),
    `after` and `before` (days, inclusive, as datetime.date or "YYYY-MM-DD", in local time: when the media was
    made, from its container's or EXIF date where it has one, else the file's mtime), `min_duration` and
    `max_duration` (seconds, inclusive; either one keeps videos only, as photos have no duration)."""

    text: str | None = None
    image: ImageQuery | None = None
    like: int | None = None
    negative: str | None = None
    w_text: float = 1.0
    w_image: float = 1.0  # also the weight of `like`
    w_negative: float = 1.0
    k: int = 10
    min_score: float | None = None
    per_video: int = PER_VIDEO
    kind: str | None = None
    folder: str | os.PathLike | None = None
    after: DateLike | None = None
    before: DateLike | None = None
    min_duration: float | None = None
    max_duration: float | None = None

    @property
    def filtered(self) -> bool:
        return any(v not in (None, "") for v in (self.kind, self.folder, self.after, self.before, self.min_duration,
                                                  self.max_duration))

    @property
    def needs_model(self) -> bool:
        return bool(clean(self.text) or clean(self.negative)) or self.image is not None

    @property
    def empty(self) -> bool:
        return not (clean(self.text) or clean(self.negative)) and self.image is None and self.like is None


@dataclass
class Hit:
    """One result: a moment of a video (start–end, shown by its best frame at t) or an image."""

    frame_id: int
    source_id: int
    source: str  # absolute path of the video or image
    kind: str  # "video" or "image"
    t: float  # seconds into the video of the best frame; 0 for images
    score: float  # cosine between that frame and the query
    thumbnail: str  # path of that frame's JPEG thumbnail
    start: float = 0.0
    end: float = 0.0
    z: float = 0.0  # score in standard deviations above this query's mean score over the whole index
    weak: bool = False  # under the minimum score: shown only because nothing passed it
    also: list[str] = field(default_factory=list)  # other paths of the same content: byte copies, other encodings
    # The lines read in that frame that hold the query's words: [{"text", "box": [x0, y0, x1, y1]}], the box as
    # fractions of the frame's width and height (only with --ocr).
    words: list[dict] = field(default_factory=list)
    offline: bool = False  # its file's folder could not be read at the last run: kept, but not there to play
    # The lines of its video said or shown as subtitles during the moment that hold the query's words:
    # [{"layer": "said" or "subtitle", "text", "start", "end"}]; a moment found by them spans them.
    lines: list[dict] = field(default_factory=list)

    def as_json(self) -> dict:
        """The hit as the CLI's --json and the web API give it (each adds where to get the files)."""
        video = self.kind == "video"
        out = {"frame_id": self.frame_id, "source_id": self.source_id, "source": os.path.basename(self.source),
               "kind": self.kind, "t": self.t, "start": self.start, "end": self.end,
               "time": fmt_span(self.start, self.end) if video else None, "score": round(self.score, 4),
               "z": round(self.z, 2), "weak": self.weak, "also": self.also_names()}
        if self.offline:  # as words: only when it says something
            out["offline"] = True
        if self.lines:
            out["lines"] = self.lines
        return {**out, "words": self.words} if self.words else out

    def also_names(self) -> list[str]:
        return other_names(self.source, self.also)


def other_names(path: str, others: list[str]) -> list[str]:
    """The other paths of one content, relative to the folder they share with `path`: as short as tells them
    apart (`path` itself being shown by its file name)."""
    if not others:
        return []
    top = os.path.commonpath([os.path.dirname(path), *(os.path.dirname(p) for p in others)])
    return [os.path.relpath(p, top) for p in others]


def clean(text: str | None) -> str | None:
    """The text without surrounding blanks; None when nothing is left."""
    return text.strip() if text and text.strip() else None
