"""Queries → vectors → moments: ranked, merged, spread over sources, with scores a user can judge.

A query is text, an image, a stored frame or a mix of them (each with a weight), plus an optional negative text.
Its `score` against a frame is the cosine between the frame and the weighted positive query; frames are ranked by
score − w_neg × (cosine with the negative), and a match must reach the minimum score both before and after that
subtraction, so what the negative names drops out.
Consecutive samples of a video that score close to their stretch's best merge into one moment.
Filters (kind, folder, a date range, a duration range) choose the sources a search may return; they apply inside
the nearest-neighbour search, so k results come back whenever k exist.
One content is one result: a byte copy was indexed once (ingest/copies.py), and a moment of another encoding of the
same video (same duration, overlapping span, frames alike) merges into the better one; `Hit.also` names the others.
"""
from __future__ import annotations

import datetime as dt
import math
import os
import re
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from .catalog import Catalog, SourceFilter, StoredFrame
from .embed import Embedder
from .errors import MediaError, QueryError
from .extract import open_media
from .extract.frames import picture_rgb
from .format import fmt_span
from .ocr import match_expression, matched, query_terms
from .preprocess import reduce_to
from .store import Store

ImageQuery = str | os.PathLike | Image.Image | np.ndarray
DateLike = dt.date | str
KINDS = ("video", "image")

PER_VIDEO = 3  # moments per video on a first page of results: the rest are one click away on the video's page
WEAK_SHOWN = 2  # when nothing passes the minimum score, show this many nearest results, marked weak
JOIN_SIGMAS = 0.5  # a neighbouring sample joins a moment if it scores within this many σ of the moment's best
# σ of a query's scores is never taken below this: a small or uniform index would otherwise split a static shot on
# decoder noise and show huge relative scores. CLIP cosines over a real library spread by 0.03-0.1.
STD_FLOOR = 0.01
# Two videos' moments are one content in two encodings when the videos' durations agree and the spans overlap within
# this many sample intervals (an edge sample more or less, frame times of another frame rate) ...
COINCIDE = 1.25
# ... and their frames at the moment's best time reach this cosine, and so do ALIKE_SHARE of the two videos' frames
# sampled at the same times (one frame can be alike in two different videos; a whole video hardly). benchmarks/copies.py
# (docs/performance.md#copies): same-time frames of MPEG-2, MPEG-4 part 2 and small H.264 encodings never fell under
# 0.963; with the test model, encodings merge and different videos do not for any threshold from 0.95 to 0.97 (at
# 0.98 some encodings stop merging): the middle of that gap. (Random-weight ViT-B-32 maps some different patterns to
# one vector, so it leaves no gap.)
COPY_COSINE = 0.96
ALIKE_SHARE = 0.9  # the share of time-aligned frames that must reach COPY_COSINE
# A frame whose words (read with --ocr) match a text query has this added to its ranking key: above every frame
# that only looks related (keys are cosines, less a weighted one), while CLIP still orders the matches.
TEXT_BOOST = 10.0
TEXT_LIMIT = 1000  # frames matched by their words that one search takes in at most, best matches first


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
        return bool(_clean(self.text) or _clean(self.negative)) or self.image is not None

    @property
    def empty(self) -> bool:
        return not (_clean(self.text) or _clean(self.negative)) and self.image is None and self.like is None


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

    def as_json(self) -> dict:
        """The hit as the CLI's --json and the web API give it (each adds where to get the files)."""
        video = self.kind == "video"
        out = {"frame_id": self.frame_id, "source_id": self.source_id, "source": os.path.basename(self.source),
               "kind": self.kind, "t": self.t, "start": self.start, "end": self.end,
               "time": fmt_span(self.start, self.end) if video else None, "score": round(self.score, 4),
               "z": round(self.z, 2), "weak": self.weak, "also": self.also_names()}
        if self.offline:  # as words: only when it says something
            out["offline"] = True
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


def _clean(text: str | None) -> str | None:
    return text.strip() if text and text.strip() else None


def parse_date(value: DateLike, name: str) -> dt.date:
    """A day from a datetime.date or "YYYY-MM-DD" (QueryError otherwise)."""
    if isinstance(value, dt.datetime):
        value = value.date()
    text = value.isoformat() if isinstance(value, dt.date) else str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = dt.date.fromisoformat(text)
            if 1000 <= day.year <= 9000:  # far-off years overflow local-time arithmetic
                return day
    except ValueError:
        pass
    raise QueryError(f"{name} must be a date written YYYY-MM-DD (got {text[:40]!r}).")


def _midnight(day: dt.date) -> float:
    """The UNIX time at which `day` starts in local time."""
    return dt.datetime.combine(day, dt.time()).timestamp()


def _seconds(value, name: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and x >= 0):
        raise QueryError(f"{name} must be a number of seconds, 0 or more.")
    return x


def media_folders(parents: list[str], limit: int = 1000) -> list[str]:
    """The folders holding media (`parents`), with the folders between them and the one they all share, sorted;
    at most `limit` (the shallowest first when there are more)."""
    if not parents:
        return []
    top = os.path.commonpath(parents)
    out = set()
    for folder in parents:
        while folder not in out:
            out.add(folder)
            if folder == top or os.path.dirname(folder) == folder:
                break
            folder = os.path.dirname(folder)
    if len(out) > limit:
        out = set(sorted(out, key=lambda f: (f.count(os.sep), f))[:limit])
    return sorted(out)


def source_filter(q: Query) -> SourceFilter | None:
    """The query's filters in the catalog's terms (None when it has none); QueryError when one is malformed or they
    contradict each other."""
    if not q.filtered:
        return None
    kind = q.kind or None
    if kind is not None and kind not in KINDS:
        raise QueryError("kind must be video or image.")
    folder = None
    if q.folder not in (None, ""):
        folder = os.path.normpath(os.path.abspath(os.fspath(q.folder)))
        if "\0" in folder:
            raise QueryError("folder must be a path.")
    after = parse_date(q.after, "after") if q.after not in (None, "") else None
    before = parse_date(q.before, "before") if q.before not in (None, "") else None
    if after and before and after > before:
        raise QueryError(f"after ({after}) is later than before ({before}).")
    lo = _seconds(q.min_duration, "min_duration") if q.min_duration not in (None, "") else None
    hi = _seconds(q.max_duration, "max_duration") if q.max_duration not in (None, "") else None
    if lo is not None and hi is not None and lo > hi:
        raise QueryError(f"min_duration ({lo:g} s) is more than max_duration ({hi:g} s).")
    if kind == "image" and (lo is not None or hi is not None):
        raise QueryError("A duration filter keeps videos only: it cannot be combined with kind=image.")
    return SourceFilter(kind, folder, _midnight(after) if after else None,
                        _midnight(before + dt.timedelta(days=1)) if before else None, lo, hi)


def image_rgb(image: ImageQuery, side: int) -> np.ndarray:
    """An RGB uint8 array (shortest side at most `side`) from a file path, a PIL image or an RGB/grey array."""
    if isinstance(image, (str, os.PathLike)):
        try:
            media = open_media(os.fspath(image))
            try:
                if media.info.kind != "image":
                    raise QueryError(f"{image} is not an image.")
                return next(iter(media.frames(1.0, side))).rgb
            finally:
                media.close()
        except MediaError as e:
            raise QueryError(f"Cannot read {image}: {e}.") from None
    if isinstance(image, Image.Image):
        try:
            return picture_rgb(image, side)
        except (OSError, ValueError, SyntaxError) as e:
            raise QueryError(f"Cannot read the image: {e}.") from None
    a = np.asarray(image)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (3, 4) or a.size == 0:
        raise QueryError("An image array must be HxWx3 RGB (or HxW grey).")
    return reduce_to(np.ascontiguousarray(a[:, :, :3], dtype=np.uint8), side)


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def query_vectors(catalog: Catalog, embedder: Embedder | None, q: Query) -> tuple[np.ndarray, np.ndarray | None]:
    """(positive, negative) unit vectors. The positive one is the weighted mean of text, image and stored frame."""
    parts = []
    if _clean(q.text):
        parts.append(q.w_text * embedder.encode_text([_clean(q.text)])[0])
    if q.image is not None:
        parts.append(q.w_image * embedder.encode_images([image_rgb(q.image, embedder.decode_side)])[0])
    if q.like is not None:
        v = catalog.vectors([int(q.like)]).get(int(q.like))
        if v is None:
            raise QueryError(f"No frame {q.like} in the index.")
        parts.append(q.w_image * v)
    if not parts:
        raise QueryError("Give a text, an image or a frame to search for.")
    pos = np.sum(parts, axis=0)
    if not np.linalg.norm(pos) > 1e-6:
        raise QueryError("The weights cancel out: give at least one part of the query a weight above 0.")
    neg = embedder.encode_text([_clean(q.negative)])[0] if _clean(q.negative) else None
    return _unit(pos), neg


@dataclass
class Scorer:
    """A query's vectors and what its scores look like over the whole index."""

    pos: np.ndarray
    neg: np.ndarray | None
    w_negative: float
    mean: float
    std: float

    @classmethod
    def for_query(cls, store: Store, embedder: Embedder | None, q: Query) -> Scorer:
        pos, neg = query_vectors(store.catalog, embedder, q)
        sample = store.vectors.sample() @ pos
        std = float(sample.std()) if len(sample) > 1 else 0.0
        return cls(pos, neg, q.w_negative, float(sample.mean()) if len(sample) else 0.0, max(std, STD_FLOOR))

    @property
    def search_vector(self) -> np.ndarray:
        return self.pos if self.neg is None else self.pos - self.w_negative * self.neg

    def score(self, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cosine with the query, ranking key: that cosine less w_negative × the cosine with the negative)."""
        s = vecs @ self.pos
        return s, (s if self.neg is None else s - self.w_negative * (vecs @ self.neg))


@dataclass
class _Moment:
    best: int  # index into the frame arrays
    lo: int
    hi: int
    key: float


def split_moments(times: np.ndarray, keys: np.ndarray, interval: float, join: float) -> list[_Moment]:
    """Greedy from the best sample: extend over consecutive samples (no gap over 1.5 intervals) whose key is within
    `join` of the moment's best, and that no better moment has taken."""
    order = np.argsort(-keys, kind="stable")
    taken = np.zeros(len(keys), bool)
    out = []
    for i in order:
        if taken[i]:
            continue
        floor = keys[i] - join
        lo = hi = i
        while lo > 0 and not taken[lo - 1] and keys[lo - 1] >= floor and times[lo] - times[lo - 1] <= 1.5 * interval:
            lo -= 1
        while (hi + 1 < len(keys) and not taken[hi + 1] and keys[hi + 1] >= floor
               and times[hi + 1] - times[hi] <= 1.5 * interval):
            hi += 1
        taken[lo:hi + 1] = True
        out.append(_Moment(int(i), int(lo), int(hi), float(keys[i])))
    return out


def search(store: Store, scorer: Scorer, q: Query, *, interval: float, min_score: float) -> list[Hit]:
    """The q.k best moments, best first, at most q.per_video from one video (0: no cap). If none reaches
    min_score, the WEAK_SHOWN nearest, marked weak."""
    if q.k < 1:
        raise QueryError("k must be at least 1.")
    where = source_filter(q)
    text = TextMatch.find(store, q, where)
    want = max(100, 10 * q.k)
    join = JOIN_SIGMAS * scorer.std
    for _ in range(3):
        _, ids = store.vectors.search(scorer.search_vector[None, :], want, where)
        ids = text.joined([int(i) for i in ids[0] if i >= 0])
        frames, vecs = store.catalog.frames(ids), store.catalog.vectors(ids)
        ids = [i for i in ids if i in frames and i in vecs]
        if not ids:
            return []
        scores, keys = scorer.score(np.stack([vecs[i] for i in ids]))
        keys = text.boosted(ids, keys)
        encodings = _Encodings(store.catalog, frames, vecs, interval)
        ranked = _collapse(_moments([frames[i] for i in ids], scores, keys, scorer, interval, join), encodings)
        good = [h for key, h in ranked if min(h.score, key) >= min_score or h.frame_id in text.ids]
        # The edge of one of the first k moments may lie among frames not fetched, or the per-video cap and merged
        # copies left fewer than k while more frames may pass: fetch more (twice at most).
        edges = all(key - join > keys.min() for key, h in ranked[:q.k] if h.kind == "video")
        short = len(_spread(good, q.k, q.per_video, encodings.video_of)) < q.k and keys.min() >= min_score
        if len(ids) < want or (edges and not short):
            break
        want *= 4
    if not good:
        weak = [h for _, h in ranked[:WEAK_SHOWN]]
        for h in weak:
            h.weak = True
        return _finished(store, text, weak)
    return _finished(store, text, _spread(good, q.k, q.per_video, encodings.video_of))


def _finished(store: Store, text: TextMatch, hits: list[Hit]) -> list[Hit]:
    """The hits returned, with what only they need: thumbnails, copies' paths, the words that matched, whether
    their file is offline."""
    offline = store.catalog.offline_ids() if hits else set()
    for h in hits:
        h.offline = h.source_id in offline
    return text.shown(store, _with_copies(store, _with_thumbnails(store, hits)))


@dataclass
class TextMatch:
    """The frames whose words (read with --ocr) match a text query: see ocr.query_terms for what must match."""

    terms: list[list[str]]
    ids: set[int]

    @classmethod
    def find(cls, store: Store, q: Query, where: SourceFilter | None) -> TextMatch:
        terms = query_terms(_clean(q.text))
        expression = match_expression(terms)
        return cls(terms, set(store.catalog.text_matches(expression, where, TEXT_LIMIT)) if expression else set())

    def joined(self, ids: list[int]) -> list[int]:
        """The nearest frames' ids and the matched ones'."""
        return ids + sorted(self.ids.difference(ids)) if self.ids else ids

    def boosted(self, ids: list[int], keys: np.ndarray) -> np.ndarray:
        if not self.ids:
            return keys
        return keys + TEXT_BOOST * np.fromiter((i in self.ids for i in ids), dtype=bool, count=len(ids))

    def shown(self, store: Store, hits: list[Hit]) -> list[Hit]:
        """The hits, each with the lines of its frame that hold the query's words."""
        words = store.catalog.frame_words([h.frame_id for h in hits if h.frame_id in self.ids])
        for h in hits:
            h.words = matched(words.get(h.frame_id, []), self.terms)
        return hits


def _with_thumbnails(store: Store, hits: list[Hit]) -> list[Hit]:
    # Only for the hits returned, not for every candidate frame (100 or more): pathlib showed in the latency profile.
    for h in hits:
        h.thumbnail = str(store.thumbnail(h.frame_id))
    return hits


def _with_copies(store: Store, hits: list[Hit]) -> list[Hit]:
    """Name in each hit's `also` the byte copies of its source and of the encodings merged into it."""
    copies = store.catalog.copy_paths(list({p for h in hits for p in (h.source, *h.also)}))
    for h in hits:
        h.also = [*copies.get(h.source, []), *(p for other in h.also for p in (other, *copies.get(other, [])))]
    return hits


def aligned_cosines(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray],
                    interval: float) -> np.ndarray:
    """Cosines between the frames of two videos (times, vectors; times sorted) sampled at the same times."""
    (ta, va), (tb, vb) = a, b
    if not len(ta) or not len(tb):
        return np.zeros(0, np.float32)
    j = np.clip(np.searchsorted(tb, ta), 0, len(tb) - 1)
    j = np.where((j > 0) & (np.abs(tb[j - 1] - ta) < np.abs(tb[j] - ta)), j - 1, j)
    near = np.abs(tb[j] - ta) < 0.5 * interval
    return np.einsum("ij,ij->i", va[near], vb[j[near]])


def encodings_alike(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], interval: float) -> bool:
    """Whether two videos' frames (times, vectors) are one content: ALIKE_SHARE of them, time-aligned, are alike."""
    cos = aligned_cosines(a, b, interval)
    return len(cos) >= ALIKE_SHARE * max(len(a[0]), len(b[0])) and (
        float(np.mean(cos >= COPY_COSINE)) >= ALIKE_SHARE)


class _Encodings:
    """Tells whether a moment is part of a kept moment of another encoding of its video: the videos' durations
    agree and the spans overlap (within COINCIDE intervals), the other video has a fetched frame at the moment's best
    time alike to it (COPY_COSINE), and the two videos are alike throughout (encodings_alike: read only then, once
    per search)."""

    def __init__(self, catalog: Catalog, frames: dict[int, StoredFrame], vecs: dict[int, np.ndarray],
                 interval: float):
        self.catalog, self.frames, self.vecs, self.interval = catalog, frames, vecs, interval
        self.tol = COINCIDE * interval
        self._at: dict[tuple[int, int], int] = {}  # (source id, sample number) -> fetched frame id
        for f in frames.values():
            self._at[f.source_id, round(f.t / interval)] = f.id
        self._alike: dict[tuple[int, int], bool] = {}
        self._videos: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.video_of: dict[int, int] = {}  # source id -> the source whose encoding it was found to be

    def duration(self, h: Hit) -> float:
        return self.frames[h.frame_id].duration

    def same(self, kept: Hit, h: Hit) -> bool:
        if kept.source_id == h.source_id or abs(self.duration(kept) - self.duration(h)) > self.tol:
            return False
        if h.start > kept.end + self.tol or kept.start > h.end + self.tol:
            return False
        there = self._at.get((kept.source_id, round(h.t / self.interval)))
        if there is None or float(self.vecs[there] @ self.vecs[h.frame_id]) < COPY_COSINE:
            return False
        pair = (kept.source_id, h.source_id)
        if pair not in self._alike:
            self._alike[pair] = encodings_alike(self._video(kept.source_id), self._video(h.source_id), self.interval)
            if self._alike[pair]:
                self.video_of.setdefault(h.source_id, self.video_of.get(kept.source_id, kept.source_id))
        return self._alike[pair]

    def _video(self, source_id: int) -> tuple[np.ndarray, np.ndarray]:
        if source_id not in self._videos:
            self._videos[source_id] = self.catalog.source_frames(source_id)[1:]
        return self._videos[source_id]


def _collapse(ranked: list[tuple[float, Hit]], encodings: _Encodings) -> list[tuple[float, Hit]]:
    """Merge each video moment into a better one of another encoding of the video: the better one keeps the other's
    path in `also`."""
    kept, by_length = [], defaultdict(list)  # kept video moments by their video's duration in units of tol
    for key, h in ranked:
        if h.kind == "video":
            slot = int(encodings.duration(h) // encodings.tol)
            twin = next((o for n in (slot - 1, slot, slot + 1) for o in by_length[n] if encodings.same(o, h)), None)
            if twin is not None:
                if h.source not in twin.also:
                    twin.also.append(h.source)
                continue
            by_length[slot].append(h)
        kept.append((key, h))
    return kept


def _moments(frames: list[StoredFrame], scores, keys, scorer: Scorer, interval: float,
             join: float) -> list[tuple[float, Hit]]:
    """(ranking key, moment) for every moment among these frames, best first."""
    by_source: dict[int, list[int]] = {}
    for n, f in enumerate(frames):
        by_source.setdefault(f.source_id, []).append(n)
    hits = []
    for members in by_source.values():
        members.sort(key=lambda n: frames[n].t)
        times = np.array([frames[n].t for n in members])
        if frames[members[0]].kind == "image":
            spans = [_Moment(0, 0, 0, float(keys[members[0]]))]
        else:
            spans = split_moments(times, keys[members], interval, join)
        for m in spans:
            n = members[m.best]
            f = frames[n]
            end = min(times[m.hi] + interval, f.duration) if f.kind == "video" else 0.0
            hits.append((m.key, Hit(f.id, f.source_id, f.path, f.kind, round(float(f.t), 3), float(scores[n]), "",
                                    start=round(float(times[m.lo]), 3), end=round(float(end), 3),
                                    z=(float(scores[n]) - scorer.mean) / scorer.std)))
    hits.sort(key=lambda kh: -kh[0])
    return hits


def _spread(hits: list[Hit], k: int, per_video: int, video_of: dict[int, int]) -> list[Hit]:
    """At most per_video moments of one video, its other encodings (video_of) included."""
    if not per_video:
        return hits[:k]
    count: dict[int, int] = {}
    out = []
    for h in hits:
        video = video_of.get(h.source_id, h.source_id)
        if h.kind == "video" and count.get(video, 0) >= per_video:
            continue
        count[video] = count.get(video, 0) + 1
        out.append(h)
        if len(out) == k:
            break
    return out


def video_scores(store: Store, scorer: Scorer, q: Query, source_id: int, *, interval: float,
                 min_score: float) -> tuple[list[tuple[float, float]], list[Hit]]:
    """The query's score at every sample of one video, and all of that video's moments (best first)."""
    ids, times, vecs = store.catalog.source_frames(source_id)
    if not ids:
        return [], []
    scores, keys = scorer.score(vecs)
    frames = store.catalog.frames(ids)
    # A folder filter on the video's own path keeps that video alone (nothing lies under a file).
    text = TextMatch.find(store, q, SourceFilter(folder=frames[ids[0]].path))
    keys = text.boosted(ids, keys)
    ranked = _moments([frames[i] for i in ids], scores, keys, scorer, interval, JOIN_SIGMAS * scorer.std)
    good = [h for key, h in ranked if min(h.score, key) >= min_score or h.frame_id in text.ids]
    return [(float(t), float(s)) for t, s in zip(times, scores)], _finished(store, text, good)
