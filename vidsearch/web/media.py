"""Media by catalog id: originals, the browser-playable stream of a video, and thumbnails. Every path served comes
from the catalog (or from the index folder for a catalog frame id), never from the request."""
from __future__ import annotations

import io
import os

from flask import Blueprint, send_file
from PIL import Image, ImageOps
from werkzeug.exceptions import NotFound, ServiceUnavailable
from werkzeug.wrappers import Response

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


@bp.get("/media/<id:source_id>")
def media(source_id: int) -> Response:
    path = source_or_404(source_id).path
    return _send(path, mime_type(path))


@bp.get("/image/<id:source_id>")
def image(source_id: int) -> Response:
    """A photo as a browser can show it: the original, or a JPEG of it when browsers cannot (TIFF, HEIC, PPM...)."""
    path = source_or_404(source_id, "image").path
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


@bp.get("/thumb/<id:frame_id>")
def thumb(frame_id: int) -> Response:
    path = state().index.thumbnail(frame_id)
    if path is None:
        raise NotFound(f"There is no frame {frame_id} in the index.")
    return _send(path, "image/jpeg", THUMB_MAX_AGE)
