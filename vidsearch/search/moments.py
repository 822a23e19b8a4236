"""Frames → moments: consecutive samples of a video that score close to their stretch's best merge into one moment
(a photo is one moment)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog import StoredFrame
from .query import Hit
from .scoring import Scorer

JOIN_SIGMAS = 0.5  # a neighbouring sample joins a moment if it scores within this many σ of the moment's best


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


def moments(frames: list[StoredFrame], scores: np.ndarray, keys: np.ndarray, scorer: Scorer, interval: float,
            join: float) -> list[tuple[float, Hit]]:
    """(ranking key, moment) for every moment among these frames, best first; `join` is JOIN_SIGMAS × the query's
    σ. A hit's thumbnail is filled in only once it is returned."""
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
                                    z=scorer.z(float(scores[n])))))
    hits.sort(key=lambda kh: -kh[0])
    return hits
