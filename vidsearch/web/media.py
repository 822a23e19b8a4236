"""Media by catalog id: originals, the browser-playable stream of a video, clips of it, and thumbnails. Every path
served comes from the catalog (or from the index folder for a catalog id), never from the request."""
from __future__ import annotations

import io
import os

from flask import Blueprint, request, send_file
from PIL import Image, ImageOps
from werkzeug.exceptions import InternalServerError, NotFound, ServiceUnavailable
from werkzeug.wrappers import Response

from ..catalog import Source
from ..clips import clip_name, parse_time
from ..errors import ClipError, MediaError
from ..index import offline_message
from ..playback import mime_type
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
    if playback.state == "preparing":
        error = ServiceUnavailable("A browser-playable copy of this video is being made; try again shortly.")
        error.retry_after = 2
        raise error
    if playback.state == "failed":
        raise NotFound(f"This video cannot be played in a browser. {playback.error}")
    return _send(playback.file, playback.mimetype)


@bp.get("/clip/<id:source_id>")
def clip(source_id: int) -> Response:
    """[start, end] of a video (seconds, or m:ss) as an MP4 download, cut frame-accurately and cached; made on the
    first request, which waits for it. 400 for a span that is empty, outside the video or over the limit."""
    source = source_or_404(source_id, "video")
    if "start" not in request.args or "end" not in request.args:
        raise ClipError("Give the clip's start and end in seconds: /clip/ID?start=S&end=E.")
    start, end = parse_time(request.args["start"]), parse_time(request.args["end"])
    try:
        path = state().index.clip(source_id, start, end)
    except MediaError as e:
        raise (NotFound if not os.path.exists(source.path) else InternalServerError)(str(e)) from None
    try:
        return send_file(path, mimetype="video/mp4", as_attachment=True, conditional=True,
                         download_name=clip_name(source.path, start, end))
    except OSError:
        raise NotFound("The clip is no longer on disk; ask for it again.") from None


@bp.get("/thumb/<id:frame_id>")
def thumb(frame_id: int) -> Response:
    path = state().index.thumbnail(frame_id)
    if path is None:
        raise NotFound(f"There is no frame {frame_id} in the index.")
    return _send(path, "image/jpeg", THUMB_MAX_AGE)
