"""Media by catalog id: originals, the browser-playable stream of a video, clips of it, and thumbnails. Every path
served comes from the catalog (or from the index folder for a catalog id), never from the request."""
from __future__ import annotations

import io
import os

from flask import Blueprint, jsonify, render_template, request, send_file, url_for
from PIL import Image, ImageOps
from werkzeug.exceptions import InternalServerError, NotFound, ServiceUnavailable
from werkzeug.wrappers import Response

from ..catalog import Source
from ..clips import clip_name, parse_time
from ..errors import Busy, ClipError, MediaError
from ..index import offline_message
from ..playback import mime_type
from ..renders import Job
from .present import seconds
from .state import source_or_404, state

bp = Blueprint("media", __name__)

THUMB_MAX_AGE = 24 * 3600  # a frame id always names the same thumbnail
WEB_IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif", "image/webp", "image/avif", "image/bmp"}


def _send(path: str | os.PathLike, mimetype: str, max_age: int | None = None) -> Response:
    """The file with Range support (206 / 416), ETag and Last-Modified; 404 if it is gone from disk."""
    try:
        return send_file(path, mimetype=mimetype, conditional=True, max_age=max_age)
    except OSError:
        raise NotFound("The file is no longer on disk.") from None


def _online(source: Source) -> str:
    """The source's path; 404 with the reason when its file is offline (its drive was not mounted at the last run)."""
    if source.offline:
        raise NotFound(offline_message(source))
    return source.path


@bp.get("/media/<id:source_id>")
def media(source_id: int) -> Response:
    path = _online(source_or_404(source_id))
    return _send(path, mime_type(path))


@bp.get("/image/<id:source_id>")
def image(source_id: int) -> Response:
    """A photo as a browser can show it: the original, or a JPEG of it when browsers cannot (TIFF, HEIC, PPM...)."""
    path = _online(source_or_404(source_id, "image"))
    if mime_type(path) in WEB_IMAGE_TYPES:
        return _send(path, mime_type(path))
    try:
        with Image.open(path) as im:
            rgb = ImageOps.exif_transpose(im).convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise NotFound("The image is no longer readable.") from None
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", quality=90)
    buf.seek(0)
    return send_file(buf, mimetype="image/jpeg", max_age=3600)


@bp.get("/play/<id:source_id>")
def play(source_id: int) -> Response:
    source_or_404(source_id, "video")
    playback = state().index.playback(source_id)
    if playback.state in ("preparing", "busy"):
        error = ServiceUnavailable("A browser-playable copy of this video is being made; try again shortly."
                                   if playback.state == "preparing" else playback.error)
        error.retry_after = 2 if playback.state == "preparing" else Busy.retry_after
        raise error
    if playback.state == "failed":
        raise NotFound(f"This video cannot be played in a browser. {playback.error}")
    return _send(playback.file, playback.mimetype)


@bp.get("/clip/<id:source_id>")
def clip(source_id: int) -> Response:
    """[start, end] of a video (seconds, or m:ss) as an MP4 download, cut frame-accurately and cached. The first
    request queues the job that makes it and answers 202 with the job (JSON, or a page that reloads itself for a
    browser), 503 when the queue is full; 400 for a span that is empty, outside the video or over the limit."""
    source, job = _clip_job(source_id)
    if job.state != "done":
        return _accepted(job)
    start, end = job.render.span
    try:
        return send_file(job.file, mimetype="video/mp4", as_attachment=True, conditional=True,
                         download_name=clip_name(source.path, start, end))
    except OSError:
        raise NotFound("The clip is no longer on disk; ask for it again.") from None


@bp.get("/api/clip/<id:source_id>")
def clip_job(source_id: int) -> tuple[dict, int]:
    """The job making a clip (queued now if needed): 200 once it is made, with the URL to download it; else 202."""
    _, job = _clip_job(source_id)
    return job_json(job), 200 if job.state == "done" else 202


@bp.get("/api/jobs/<job_id>")
def job_status(job_id: str) -> dict:
    """A clip or browser copy queued, being made or made lately: state, progress (0..1) and, once made, its URL."""
    job = state().index.job(job_id)
    if job is None:
        raise NotFound(f"There is no job {job_id} (finished jobs are forgotten after a while; ask again).")
    return job_json(job)


def job_json(job: Job) -> dict:
    render = job.render
    if render.kind == "clip":
        url = url_for("media.clip", source_id=render.source_id, start=seconds(render.span[0]),
                      end=seconds(render.span[1]))
    else:
        url = url_for("media.play", source_id=render.source_id)
    return {"id": job.id, "kind": render.kind, "source_id": render.source_id, "state": job.state,
            "progress": round(job.progress, 3), "error": job.error,
            "status_url": url_for("media.job_status", job_id=job.id), "url": url if job.state == "done" else None}


def _clip_job(source_id: int) -> tuple[Source, Job]:
    """The clip's source and job, from the request's start and end; a failed job is an error (404 when the file is
    gone), a full queue a 503."""
    source = source_or_404(source_id, "video")
    if "start" not in request.args or "end" not in request.args:
        raise ClipError("Give the clip's start and end in seconds: /clip/ID?start=S&end=E.")
    start, end = parse_time(request.args["start"]), parse_time(request.args["end"])
    try:
        job = state().index.clip_job(source_id, start, end)
    except Busy as e:
        error = ServiceUnavailable(str(e))
        error.retry_after = e.retry_after
        raise error from None
    except MediaError as e:
        raise NotFound(str(e)) from None
    if job.state == "failed":
        raise (NotFound if not os.path.exists(source.path) else InternalServerError)(job.error)
    return source, job


def _accepted(job: Job) -> Response:
    """202 for a job under way: its JSON, or for a browser a page that asks again every 2 s (works without
    JavaScript: the last reload downloads the clip)."""
    body = job_json(job)
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        response = Response(render_template("making.html", job=body), mimetype="text/html")
        response.headers["Refresh"] = "2"
    else:
        response = jsonify(body)
    response.status_code = 202
    response.headers["Location"] = body["status_url"]
    response.headers["Retry-After"] = "2"
    return response


@bp.get("/thumb/<id:frame_id>")
def thumb(frame_id: int) -> Response:
    path = state().index.thumbnail(frame_id)
    if path is None:
        raise NotFound(f"There is no frame {frame_id} in the index.")
    return _send(path, "image/jpeg", THUMB_MAX_AGE)
