"""Hits as the pages and the JSON API show them: names, time labels, scores and the URLs that open them."""
from __future__ import annotations

import base64
import io

import numpy as np
from flask import url_for
from PIL import Image

from ..search import Hit, Query
from .queries import SearchRequest

TIMELINE_WIDTH = 1000  # the timeline's SVG user units across; stretched to the page's width


def seconds(t: float) -> str:
    """A time for a URL: as short as it can be without losing the catalog's millisecond precision."""
    return f"{t:.3f}".rstrip("0").rstrip(".")


def watch_url(req: SearchRequest, source_id: int, t: float) -> str:
    """The player at t, with the query, so that the watch page can draw its timeline and moments."""
    return url_for("pages.watch", source_id=source_id, t=seconds(t), **req.params())


def hits_json(hits: list[Hit], req: SearchRequest) -> list[dict]:
    """Hit.as_json, with the URLs that show each hit."""
    return [{**h.as_json(), "thumbnail_url": url_for("media.thumb", frame_id=h.frame_id),
             "watch_url": watch_url(req, h.source_id, h.start) if h.kind == "video"
             else url_for("media.image", source_id=h.source_id),
             "media_url": url_for("media.media", source_id=h.source_id)} for h in hits]


def timeline(samples: list[tuple[float, float]], moments: list[Hit], duration: float, min_score: float) -> dict:
    """The score along a video as SVG: x in [0, TIMELINE_WIDTH] is time, y in [0, 100] is score (top is high), on a
    scale that spans this video's scores and the minimum score so that the threshold line is always in view."""
    duration = max(duration, samples[-1][0] if samples else 0, 1e-3)
    scores = [s for _, s in samples] + [min_score]
    lo, hi = min(scores), max(scores)
    pad = max(hi - lo, 0.02) * 0.1
    lo, hi = lo - pad, hi + pad

    def x(t: float) -> float:
        return round(t / duration * TIMELINE_WIDTH, 1)

    def y(s: float) -> float:
        return round(100 - (s - lo) / (hi - lo) * 100, 1)

    # Each sample holds until the next: steps, as the index sees the video.
    points: list[tuple[float, float]] = []
    for t, s in samples:
        if points and points[-1][1] == y(s):
            continue
        if points:
            points.append((x(t), points[-1][1]))
        points.append((x(t), y(s)))
    if points:
        points.append((x(duration), points[-1][1]))
    line = " L".join(f"{px},{py}" for px, py in points)
    line, area = (f"M{line}", f"M{points[0][0]},100 L{line} L{points[-1][0]},100 Z") if points else ("", "")
    marks = [{"x": x(m.start), "width": max(x(m.end) - x(m.start), 2)} for m in moments]
    return {"width": TIMELINE_WIDTH, "duration": duration, "line": line, "area": area, "threshold": y(min_score),
            "marks": marks}


def describe(query: Query) -> str:
    """The query in words: “a cat” and your image, not “a dog”."""
    parts = [f"“{query.text}”"] if query.text else []
    if query.image is not None:
        parts.append("your image")
    if query.like is not None:
        parts.append("this frame")
    out = " and ".join(parts)
    return f"{out}, not “{query.negative}”" if query.negative else out


def preview_data_url(rgb: np.ndarray | None, size: int = 160) -> str | None:
    """A small JPEG data URL of a query image, to show what the results are for."""
    if rgb is None:
        return None
    im = Image.fromarray(rgb)
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=80)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()
