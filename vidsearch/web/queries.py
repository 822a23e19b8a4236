"""A search request (text and/or uploaded image, k, minimum score) read and checked from the HTTP request."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from flask import request
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from ..format import fmt_bytes
from ..search import Hit, image_rgb
from .state import state

MAX_K = 200
MAX_TEXT = 1000  # characters; CLIP reads only the first few dozen tokens anyway
# Raster formats only: Pillow's other openers include EPS, which runs Ghostscript on the upload.
UPLOAD_FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO", "AVIF"]


@dataclass
class Query:
    text: str
    image: np.ndarray | None  # RGB, long side at most 320 px
    k: int
    min_score: float | None

    @property
    def empty(self) -> bool:
        return not self.text and self.image is None


def read_query(default_k: int) -> Query:
    """The query in the request's URL or form, and its uploaded `image` if one was posted (400/413 if bad)."""
    values = request.values
    text = values.get("q", "").strip()
    if len(text) > MAX_TEXT:
        raise BadRequest(f"The text query is too long (over {MAX_TEXT} characters).")
    upload = request.files.get("image") if request.method == "POST" else None
    image = read_image(upload) if upload is not None and upload.filename else None
    return Query(text, image, _k(values.get("k", ""), default_k), _min_score(values.get("min_score", "")))


def run(query: Query) -> list[Hit]:
    return state().index.search(query.text or None, image=query.image, k=query.k, min_score=query.min_score)


def _k(raw: str, default: int) -> int:
    if not raw.strip():
        return default
    try:
        k = int(raw)
    except ValueError:
        raise BadRequest(f"k must be a whole number from 1 to {MAX_K}.") from None
    if not 1 <= k <= MAX_K:
        raise BadRequest(f"k must be a whole number from 1 to {MAX_K}.")
    return k


def _min_score(raw: str) -> float | None:
    if not raw.strip():
        return None
    try:
        score = float(raw)
    except ValueError:
        score = math.nan
    if not -1 <= score <= 1:  # also rejects NaN
        raise BadRequest("min_score must be a number from -1 to 1 (scores are cosine similarities).")
    return score


def read_image(upload: FileStorage) -> np.ndarray:
    """The uploaded image, decoded to a small RGB array, or a 413/400 that says what is wrong with it."""
    limits = state()
    stream = upload.stream
    size = stream.seek(0, 2)
    stream.seek(0)
    if size > limits.max_upload:
        raise RequestEntityTooLarge(f"The image is larger than the upload limit of {fmt_bytes(limits.max_upload)}.")
    if size == 0:
        raise BadRequest("The uploaded file is empty.")
    try:
        image = Image.open(stream, formats=UPLOAD_FORMATS)
    except Image.DecompressionBombError:
        raise BadRequest("The image has too many pixels to open safely.") from None
    except Exception:  # Pillow raises many kinds of exception on hostile input; none is the server's fault
        raise BadRequest("The upload is not an image (JPEG, PNG, WebP, GIF, BMP, TIFF or AVIF).") from None
    width, height = image.size
    if width * height > limits.max_pixels:
        raise BadRequest(f"The image has too many pixels to open safely ({width}×{height}).")
    try:
        return image_rgb(image)
    except Exception:
        raise BadRequest("The image is damaged and cannot be decoded.") from None
