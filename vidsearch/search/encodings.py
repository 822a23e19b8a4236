"""One content, one result: a moment of another encoding of the same video merges into the better one.

(A byte copy never gets this far: it was indexed once, see ingest/copies.py.) The rest of search sees only
`merge_encodings` and what it returns (`Merged`); how two videos are found to be one content stays in this module.
Today it is decided here, at search time: the videos' durations agree, the two moments overlap (within COINCIDE
intervals), the other video has a fetched frame at the moment's best time alike to it (COPY_COSINE), and the two
videos are alike throughout (encodings_alike: both videos' frames read, once per pair per search).
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..catalog import Catalog, StoredFrame
from .query import Hit

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


@dataclass
class Merged:
    """The moments left once other encodings merged into the better moment (which names them in `also`)."""

    ranked: list[tuple[float, Hit]]  # (ranking key, moment), best first
    # source id -> the source it was found to be an encoding of: its moments count with that one's per-video cap
    video_of: dict[int, int]


def merge_encodings(catalog: Catalog, ranked: list[tuple[float, Hit]], frames: dict[int, StoredFrame],
                    vecs: dict[int, np.ndarray], interval: float) -> Merged:
    """Merge each video moment of `ranked` (best first) into a better one of another encoding of its video; `frames`
    and `vecs` are the frames this search fetched."""
    encodings = _Encodings(catalog, frames, vecs, interval)
    return Merged(_collapse(ranked, encodings), encodings.video_of)


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
    """Tells whether a moment is part of a kept moment of another encoding of its video (see the module's words)."""

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
