"""The JSON API (documented in the README). Errors are {"error": "..."} with a 4xx status (see app.py)."""
from __future__ import annotations

from flask import Blueprint, url_for
from werkzeug.exceptions import BadRequest

from .present import hits_json
from .queries import read_query, run
from .state import source_or_404, state

bp = Blueprint("api", __name__, url_prefix="/api")

API_K = 10  # as the CLI's


@bp.route("/search", methods=["GET", "POST"])
def search() -> dict:
    query = read_query(API_K)
    if query.empty:
        raise BadRequest("Give a text query (q) or, in a POST, an image (multipart field `image`).")
    hits = hits_json(run(query))
    return {"query": {"q": query.text or None, "image": query.image is not None, "k": query.k,
                      "min_score": query.min_score},
            "count": len(hits), "hits": hits}


@bp.get("/info")
def info() -> dict:
    s = state()
    stats = s.index.stats().as_dict()
    return {**stats, "max_upload_bytes": s.max_upload, "max_upload_pixels": s.max_pixels}


@bp.get("/play/<id:source_id>")
def play(source_id: int) -> dict:
    source = source_or_404(source_id, "video")
    p = state().proxies.playback(source_id, source["path"], source["duration"])
    return {"source_id": source_id, "state": p.state, "proxy": p.proxy,
            "url": url_for("media.play", source_id=source_id) if p.state == "ready" else None,
            "progress": None if p.progress is None else round(p.progress, 3), "error": p.error}
