"""From ranked moments to the results returned: spread over sources, then what only the returned hits need."""
from __future__ import annotations

from ..store import Store
from .query import Hit
from .words import TextMatches


def spread(hits: list[Hit], k: int, per_video: int, video_of: dict[int, int]) -> list[Hit]:
    """The first k hits with at most per_video moments of one video (0: no cap), its other encodings (video_of:
    source id -> the video it is an encoding of) included."""
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


def finished(store: Store, text: TextMatches, hits: list[Hit]) -> list[Hit]:
    """The hits returned, with what only they need: thumbnails, copies' paths, the text that matched, whether
    their file is offline."""
    offline = store.catalog.offline_ids() if hits else set()
    for h in hits:
        h.offline = h.source_id in offline
    return text.shown(store, _with_copies(store, _with_thumbnails(store, hits)))


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
