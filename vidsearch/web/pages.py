"""The HTML pages: search (text by GET, an uploaded image by POST) and the watch page of a video."""
from __future__ import annotations

import math
import os

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from ..clips import MAX_SECONDS
from ..format import fmt_span, fmt_time
from ..search import PER_VIDEO, other_names
from .present import describe, hits_json, preview_data_url, seconds, timeline, watch_url
from .queries import SearchRequest, more_moments, read_query
from .state import source_or_404, state

bp = Blueprint("pages", __name__)

PAGE_K = 24  # fills whole rows of 2, 3, 4 or 6 columns
CLIP_SECONDS = 10.0  # the clip offered where no moment is shown


@bp.app_template_filter("sigma")
def sigma(z: float) -> str:
    """A relative score as people read it: +3.1σ (never −0.0σ)."""
    return f"{round(z, 1) + 0.0:+.1f}σ"


@bp.route("/", methods=["GET", "POST"])
def search() -> str:
    req = read_query(PAGE_K)
    query, index = req.query, state().index
    hits, like = None, None
    if not query.empty:
        found = index.search(query)
        hits = hits_json(found, req)
        _link_the_rest(hits, more_moments(query, found), req)
    if query.like is not None:
        frame = index.frame(query.like)
        if frame is not None:
            like = {"source": os.path.basename(frame.path), "time": fmt_time(frame.t), "kind": frame.kind}
    return render_template("search.html", query=query, req=req, hits=hits, like=like, what=describe(query),
                           no_good_match=bool(hits) and all(h["weak"] for h in hits),
                           default_min_score=index.min_score, default_k=PAGE_K, default_per_video=PER_VIDEO,
                           preview=preview_data_url(query.image), counts=index.counts(), folders=index.folders())


def _link_the_rest(hits: list[dict], more: dict[int, int], req: SearchRequest) -> None:
    """On the last card shown of a video that has more moments: how many, and a link to its watch page, which
    lists them all."""
    last = {h["source_id"]: h for h in hits if h["source_id"] in more}
    for sid, h in last.items():
        first = next(x for x in hits if x["source_id"] == sid)
        h["more"], h["more_url"] = more[sid], watch_url(req, sid, first["start"]) + "#moments"


@bp.get("/watch/<id:source_id>")
def watch(source_id: int) -> str | Response:
    source = source_or_404(source_id)
    if source.kind != "video":
        return redirect(url_for("media.image", source_id=source_id))
    t = min(_seconds(request.args.get("t", "")), source.duration)
    req = read_query(PAGE_K)
    query = req.query
    strip, moments, found = None, [], []
    if query.text or query.image is not None or query.like is not None:
        samples, found = state().index.video(source_id, query)
        strip = timeline(samples, found, source.duration, req.min_score)
        for m, mark in sorted(zip(found, strip["marks"]), key=lambda mm: mm[0].start):
            moments.append({"start": m.start, "t_param": seconds(m.start), "end_param": seconds(m.end),
                            "span": fmt_span(m.start, m.end),
                            "score": m.score, "z": m.z, "frame_id": m.frame_id,
                            "current": m.start <= t < m.end or t == m.start, **mark,
                            "url": watch_url(req, source_id, m.start)})
    return render_template(
        "watch.html", source=source, name=os.path.basename(source.path), t=t, t_param=seconds(t),
        time=fmt_time(t), duration=fmt_time(source.duration), query=query, req=req, what=describe(query),
        strip=strip, moments=moments, back=url_for("pages.search", **req.params()),
        copies=other_names(source.path, [c.path for c in state().index.copies(source_id)]),
        playback=state().index.playback(source_id), clip=_clip_span(t, found, source.duration),
        word_moments=[{"start": m.start, "end": m.end, "words": m.words} for m in found if m.words])


def _clip_span(t: float, moments: list, duration: float) -> dict:
    """What "Download clip" offers first: the moment shown (the one playing from t), else CLIP_SECONDS from t."""
    current = next((m for m in moments if m.start <= t < m.end or t == m.start), None)
    start, end = (current.start, current.end) if current else (t, t + CLIP_SECONDS)
    end = min(end, duration)
    if start >= end:  # at the very end: the last seconds
        start = max(0.0, duration - CLIP_SECONDS)
    end = min(end, start + MAX_SECONDS)
    return {"start": seconds(start), "end": seconds(end), "duration": seconds(duration), "limit": f"{MAX_SECONDS:g}"}


def _seconds(raw: str) -> float:
    if not raw.strip():
        return 0.0
    try:
        t = float(raw)
    except ValueError:
        t = math.nan
    if not math.isfinite(t) or t < 0:
        raise BadRequest("t must be a number of seconds from the start of the video.")
    return t
