"""The JSON API (documented in the README). Errors are {"error": "..."} with a 4xx status (see app.py)."""
from __future__ import annotations

from flask import Blueprint, url_for
from werkzeug.exceptions import BadRequest

from .present import hits_json
from .queries import filter_json, read_query
from .state import source_or_404, state

bp = Blueprint("api", __name__, url_prefix="/api")

API_K = 10  # as the CLI's


@bp.route("/search", methods=["GET", "POST"])
def search() -> dict:
    req = read_query(API_K)
    q = req.query
    if req.image_lost:
        raise BadRequest("The image named by qimg is no longer kept by the server; upload it again.")
    if q.empty:
        raise BadRequest("Give a text query (q), a frame id (like) or, in a POST, an image (multipart field `image`).")
    hits = hits_json(state().index.search(q), req)
    return {"query": {"q": q.text, "neg": q.negative, "image": q.image is not None, "qimg": req.qimg,
                      "like": q.like, "w_text": q.w_text, "w_image": q.w_image, "w_neg": q.w_negative, "k": q.k,
                      "min_score": q.min_score, "per_video": q.per_video, **filter_json(q)},
            "min_score": req.min_score, "no_good_match": not any(not h["weak"] for h in hits),
            "count": len(hits), "hits": hits}


@bp.get("/info")
def info() -> dict:
    s = state()
    stats = s.index.stats().as_dict()
    return {**stats, "max_upload_bytes": s.max_upload, "max_upload_pixels": s.max_pixels}


@bp.get("/play/<id:source_id>")
def play(source_id: int) -> dict:
    source_or_404(source_id, "video")
    p = state().index.playback(source_id)
    return {"source_id": source_id, "state": p.state, "proxy": p.proxy,
            "url": url_for("media.play", source_id=source_id) if p.state == "ready" else None,
            "progress": None if p.progress is None else round(p.progress, 3), "error": p.error}


@bp.get("/transcript/<id:source_id>")
def transcript(source_id: int) -> dict:
    """A video's subtitle and speech lines by time: [{start, end, layer ("subtitle" or "said"), origin, text}]."""
    source_or_404(source_id, "video")
    return {"source_id": source_id, "lines": [line.as_json() for line in state().index.transcript(source_id)]}


@bp.get("/status")
def status() -> dict:
    """The folder watcher (serve --watch): idle or indexing (files_done of files_total, the file being worked on),
    what its last run did and why the last one failed, with the index's counts. Without a watcher: idle, nothing."""
    s = state()
    return {**s.watch_status(), "counts": s.index.counts()}
