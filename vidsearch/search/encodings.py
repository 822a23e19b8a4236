"""One content, one result: a moment of another encoding of the same video merges into the better one.

(A byte copy never gets this far: it was indexed once, see ingest/copies.py.) Which videos are one content in two
encodings was decided once, from their pixels, when the later of them was indexed (extract/pixels.py, the catalog's
`encodings` pairs); here a moment merges into a kept moment of such a twin when their spans overlap. The rest of
search sees only `merge_encodings` and what it returns (`Merged`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..catalog import Catalog, StoredFrame
from .query import Hit

# Two twins' moments are one moment when their spans overlap within this many sample intervals (an edge sample more
# or less, frame times of another frame rate).
COINCIDE = 1.25


@dataclass
class Merged:
    """The moments left once other encodings merged into the better moment (which names them in `also`)."""

    ranked: list[tuple[float, Hit]]  # (ranking key, moment), best first
    # source id -> the source it was found to be an encoding of: its moments count with that one's per-video cap
    video_of: dict[int, int]


def merge_encodings(catalog: Catalog, ranked: list[tuple[float, Hit]], frames: dict[int, StoredFrame],
                    vecs: dict[int, np.ndarray], interval: float) -> Merged:
    """Merge each video moment of `ranked` (best first) into a better one of another encoding of its video; `frames`
    are the frames this search fetched (`vecs`, their vectors, are not needed: the pairs were decided from pixels)."""
    pairs = catalog.encodings({f.source_id for f in frames.values()})
    tol, video_of = COINCIDE * interval, {}
    kept, twins_kept = [], {}  # source id -> its kept video moments
    for key, h in ranked:
        if h.kind == "video":
            twin = next((o for s in pairs.get(h.source_id, ()) for o in twins_kept.get(s, ())
                         if not (h.start > o.end + tol or o.start > h.end + tol)), None)
            if twin is not None:
                if h.source not in twin.also:
                    twin.also.append(h.source)
                video_of.setdefault(h.source_id, video_of.get(twin.source_id, twin.source_id))
                continue
            twins_kept.setdefault(h.source_id, []).append(h)
        kept.append((key, h))
    return Merged(kept, video_of)
