"""One search, start to end: the frames nearest to the query (and those a text layer matched) → moments → other
encodings merged → spread over sources → the hits returned. Also one video's scores and moments (its page)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog import SourceFilter
from ..errors import QueryError
from ..store import Store
from .encodings import merge_encodings
from .filters import source_filter
from .moments import JOIN_SIGMAS, moments
from .query import Hit, Query
from .results import finished, spread
from .scoring import Scorer
from .words import TextMatches

WEAK_SHOWN = 2  # when nothing passes the minimum score, show this many nearest results, marked weak
# A search fetches FETCH_PER_RESULT nearest frames per result asked (FIRST_FETCH at least), as a moment spans
# several frames and merged encodings and the per-video cap drop moments; while that is not enough, GROWTH times as
# many, ROUNDS fetches at most (1600 frames per result asked: a request's time stays bounded).
FIRST_FETCH = 100
FETCH_PER_RESULT = 10
GROWTH = 4
ROUNDS = 3


def search(store: Store, scorer: Scorer, q: Query, *, interval: float, min_score: float) -> list[Hit]:
    """The q.k best moments, best first, at most q.per_video from one video (0: no cap). If none reaches
    min_score, the WEAK_SHOWN nearest, marked weak.

    Fetches the nearest frames, more while the first k results could still change (_Fetched.settled) and the index
    has more: so k results come back whenever k exist after merging and the per-video cap (within ROUNDS)."""
    if q.k < 1:
        raise QueryError("k must be at least 1.")
    where = source_filter(q)
    s = _Search(store, scorer, where, TextMatches.find(store, q, where), interval, min_score)
    want = max(FIRST_FETCH, FETCH_PER_RESULT * q.k)
    for _ in range(ROUNDS):
        found = s.fetch(want)
        if found is None:
            return []
        if found.exhausted or found.settled(q.k, q.per_video, s.join, min_score):
            break
        want *= GROWTH
    if not found.good:
        return finished(store, s.text, _weak(found.ranked))
    return finished(store, s.text, spread(found.good, q.k, q.per_video, found.video_of))


@dataclass
class _Fetched:
    """The moments among the frames of one fetch."""

    ranked: list[tuple[float, Hit]]  # (ranking key, moment), best first, other encodings merged
    good: list[Hit]  # those that pass the minimum score (or that a text layer matched)
    video_of: dict[int, int]  # see encodings.Merged
    lowest: float  # the lowest ranking key fetched: a frame not fetched ranks at most this
    exhausted: bool  # fewer frames came back than asked for: there are no more

    def settled(self, k: int, per_video: int, join: float, min_score: float) -> bool:
        """Whether more frames cannot change the first k results. A frame not fetched ranks at most `lowest`: it
        would join none of their video moments when each one's best less `join` lies above that, and it cannot
        fill a page that merging and the per-video cap left short when `lowest` is under min_score."""
        edges = all(key - join > self.lowest for key, h in self.ranked[:k] if h.kind == "video")
        short = len(spread(self.good, k, per_video, self.video_of)) < k and self.lowest >= min_score
        return edges and not short


@dataclass
class _Search:
    """What every fetch of one search shares."""

    store: Store
    scorer: Scorer
    where: SourceFilter | None
    text: TextMatches
    interval: float
    min_score: float

    @property
    def join(self) -> float:
        return JOIN_SIGMAS * self.scorer.std

    def fetch(self, want: int) -> _Fetched | None:
        """The moments among the `want` frames nearest to the query that the filter keeps and those the text layers
        matched; None when there are none."""
        _, found = self.store.vectors.search(self.scorer.search_vector[None, :], want, self.where)
        nearest = [int(i) for i in found[0] if i >= 0]
        ids = self.text.joined(nearest)
        frames, vecs = self.store.catalog.frames(ids), self.store.catalog.vectors(ids)
        ids = [i for i in ids if i in frames and i in vecs]
        if not ids:
            return None
        scores, keys = self.scorer.score(np.stack([vecs[i] for i in ids]))
        keys = self.text.boosted(ids, keys)
        ranked = moments([frames[i] for i in ids], scores, keys, self.scorer, self.interval, self.join)
        merged = merge_encodings(self.store.catalog, ranked, frames, vecs, self.interval)
        return _Fetched(merged.ranked, _passing(merged.ranked, self.min_score, self.text), merged.video_of,
                        keys.min(), len(nearest) < want)


def _passing(ranked: list[tuple[float, Hit]], min_score: float, text: TextMatches) -> list[Hit]:
    """The moments that reach min_score before and after the negative's subtraction, or that a text layer matched."""
    return [h for key, h in ranked if min(h.score, key) >= min_score or h.frame_id in text.ids]


def _weak(ranked: list[tuple[float, Hit]]) -> list[Hit]:
    weak = [h for _, h in ranked[:WEAK_SHOWN]]
    for h in weak:
        h.weak = True
    return weak


def video_scores(store: Store, scorer: Scorer, q: Query, source_id: int, *, interval: float,
                 min_score: float) -> tuple[list[tuple[float, float]], list[Hit]]:
    """The query's score at every sample of one video, and all of that video's moments (best first)."""
    ids, times, vecs = store.catalog.source_frames(source_id)
    if not ids:
        return [], []
    scores, keys = scorer.score(vecs)
    frames = store.catalog.frames(ids)
    # A folder filter on the video's own path keeps that video alone (nothing lies under a file).
    text = TextMatches.find(store, q, SourceFilter(folder=frames[ids[0]].path))
    keys = text.boosted(ids, keys)
    ranked = moments([frames[i] for i in ids], scores, keys, scorer, interval, JOIN_SIGMAS * scorer.std)
    good = _passing(ranked, min_score, text)
    return [(float(t), float(s)) for t, s in zip(times, scores)], finished(store, text, good)
