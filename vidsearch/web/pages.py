"""The HTML pages: search (text by GET, image by POST) and the watch page of a video."""
from __future__ import annotations

import math
import os

from flask import Blueprint, redirect, render_template, request, url_for
from werkzeug.exceptions import BadRequest
from werkzeug.wrappers import Response

from ..format import fmt_time
from .present import hits_json, preview_data_url, seconds
from .queries import read_query, run
from .state import source_or_404, state

bp = Blueprint("pages", __name__)

PAGE_K = 24  # fills whole rows of 2, 3, 4 or 6 columns
MAX_MOMENTS = 200


@bp.route("/", methods=["GET", "POST"])
def search() -> str:
    query = read_query(PAGE_K)
    hits = None if query.empty else hits_json(run(query))
    return render_template("search.html", query=query, hits=hits, preview=preview_data_url(query.image),
                           counts=state().index.store.counts())


@bp.get("/watch/<id:source_id>")
def watch(source_id: int) -> str | Response:
    source = source_or_404(source_id)
    if source["kind"] != "video":
        return redirect(url_for("media.image", source_id=source_id))
    t = min(_seconds(request.args.get("t", "")), source["duration"])
    hit_frames = _frame_ids(request.args.get("hits", ""))
    hits = ",".join(map(str, hit_frames))
    rows = state().index.store.frames(hit_frames)
    moments = [{"t": mt, "time": fmt_time(mt), "frame_id": fid, "current": abs(mt - t) < 0.001,
                "url": url_for("pages.watch", source_id=source_id, t=seconds(mt), hits=hits)}
               for mt, fid in sorted((r["t"], r["id"]) for r in rows.values() if r["source_id"] == source_id)]
    return render_template(
        "watch.html", source=source, name=os.path.basename(source["path"]), t=t, t_param=seconds(t),
        time=fmt_time(t), duration=fmt_time(source["duration"]), moments=moments,
        playback=state().proxies.playback(source_id, source["path"], source["duration"]))

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


def _frame_ids(raw: str) -> list[int]:
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if len(parts) > MAX_MOMENTS or not all(p.isascii() and p.isdigit() and len(p) <= 18 for p in parts):
        raise BadRequest(f"hits must be up to {MAX_MOMENTS} frame ids separated by commas.")
    return [int(p) for p in parts]
