"""A search read and checked from the HTTP request: text, a negative text, an uploaded or remembered image,
a stored frame ("more like this"), weights, k, the minimum score, moments per video and the filters (kind, folder,
after, before, min_duration, max_duration)."""
from __future__ import annotations

import ctypes
import math
import posixpath
from collections import Counter
from dataclasses import dataclass

import numpy as np
from flask import request
from PIL import Image
from werkzeug.datastructures import FileStorage
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge

from ..errors import QueryError
from ..format import fmt_bytes
from ..search import KINDS, PER_VIDEO, Hit, Query, parse_date, source_filter
from .state import state

MAX_K = 200
MAX_WEIGHT = 10
MAX_PER_VIDEO = 50
MAX_TEXT = 1000  # characters; CLIP reads only the first few dozen tokens anyway
MAX_ID = 2 ** 63 - 1  # SQLite's integers
MAX_PATH = 4096  # characters of a folder to filter by (Linux's PATH_MAX)
MAX_DURATION = 999_999  # seconds (11 days): more than any video
MAX_ASPECT = 20  # long side / short side of an upload: wider than any panorama, and what it keeps stays small
TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc's; there is none to call elsewhere
# Raster formats only: Pillow's other openers include EPS, which runs Ghostscript on the upload.
UPLOAD_FORMATS = ["JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "MPO", "AVIF"]


@dataclass
class SearchRequest:
    """A search as a request asks for it: the query, and the token its image is remembered under."""

    query: Query
    qimg: str | None  # the token the query's image is remembered under, for links that redo this query
    image_lost: bool  # the request named a remembered image that is no longer kept: that part is dropped

    @property
    def min_score(self) -> float:
        """The minimum score in force: the request's, or the index's."""
        return state().index.min_score if self.query.min_score is None else self.query.min_score

    def params(self) -> dict:
        """What a link needs to redo this query elsewhere (the watch page): defaults left out."""
        q = self.query
        p = {"q": q.text, "neg": q.negative, "like": q.like, "qimg": self.qimg, "w_text": _g(q.w_text, 1),
             "w_image": _g(q.w_image, 1), "w_neg": _g(q.w_negative, 1), "min_score": _g(q.min_score, None),
             **filter_params(q)}
        return {k: v for k, v in p.items() if v not in (None, "")}


def filter_params(q: Query) -> dict:
    """The query's filters as URL parameters (None where unset)."""
    return {"kind": q.kind, "folder": q.folder, "after": _day(q.after), "before": _day(q.before),
            "min_duration": _g(q.min_duration, None), "max_duration": _g(q.max_duration, None)}


def filter_json(q: Query) -> dict:
    """The query's filters as the JSON API echoes them: null where unset, days as "YYYY-MM-DD", seconds as
    numbers."""
    return {"kind": q.kind, "folder": q.folder, "after": _day(q.after), "before": _day(q.before),
            "min_duration": q.min_duration, "max_duration": q.max_duration}


def _day(d) -> str | None:
    return None if d is None else parse_date(d, "date").isoformat()


def _g(x: float | None, default: float | None) -> str | None:
    return None if x == default else f"{x:g}"


def read_query(default_k: int) -> SearchRequest:
    """The query in the request's URL or form, with its uploaded `image` if one was posted (400/413 if bad).
    An upload is remembered (see RecentImages); `qimg` names one remembered earlier."""
    values = request.values
    upload = request.files.get("image") if request.method == "POST" else None
    image, qimg, lost = None, None, False
    if upload is not None and upload.filename:
        image = read_image(upload)
        qimg = state().images.put(image)
    elif values.get("qimg"):
        image = state().images.get(values["qimg"])
        qimg, lost = (values["qimg"], False) if image is not None else (None, True)
    like = values.get("like", "").strip()
    # The length first: int() refuses strings of over 4300 digits with a ValueError.
    if like and not (like.isascii() and like.isdigit() and len(like) <= 19 and int(like) <= MAX_ID):
        raise BadRequest("like must be a frame id (a whole number).")
    query = Query(_text("q") or None, image, int(like) if like else None, _text("neg") or None,
                  _number("w_text", 1.0, 0, MAX_WEIGHT), _number("w_image", 1.0, 0, MAX_WEIGHT),
                  _number("w_neg", 1.0, 0, MAX_WEIGHT), _number("k", default_k, 1, MAX_K, int),
                  _number("min_score", None, -1, 1, why=" (scores are cosine similarities)"),
                  _number("per_video", PER_VIDEO, 0, MAX_PER_VIDEO, int, " (0: no limit)"), **_filters())
    try:
        source_filter(query)  # the filters' agreement: after not later than before, ...
    except QueryError as e:
        raise BadRequest(str(e)) from None
    return SearchRequest(query, qimg, lost)


def _filters() -> dict:
    """kind, folder, after, before, min_duration and max_duration from the request (400 for a bad one). The folder
    is only compared with the catalog's paths, never opened: it must be absolute and is normalised as text."""
    kind = _text("kind") or None
    if kind is not None and kind not in KINDS:
        raise BadRequest("kind must be video or image.")
    folder = request.values.get("folder", "").strip() or None
    if folder is not None:
        if len(folder) > MAX_PATH or "\0" in folder or not folder.startswith("/"):
            raise BadRequest("folder must be an absolute path (a folder under the indexed ones).")
        folder = posixpath.normpath(folder)
        folder = "/" + folder.lstrip("/")  # normpath keeps a leading "//"
    days = {}
    for name in ("after", "before"):
        raw = _text(name)
        try:
            days[name] = parse_date(raw, name) if raw else None
        except QueryError as e:
            raise BadRequest(str(e)) from None
    durations = {name: _number(name, None, 0, MAX_DURATION, why=" (seconds)")
                 for name in ("min_duration", "max_duration")}
    return {"kind": kind, "folder": folder, **days, **durations}


def _text(name: str) -> str:
    text = request.values.get(name, "").strip()
    if len(text) > MAX_TEXT:
        raise BadRequest(f"{name} is too long (over {MAX_TEXT} characters).")
    return text


def _number(name: str, default, lo: float, hi: float, kind=float, why: str = ""):
    raw = request.values.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = math.nan
    if not lo <= value <= hi:  # also rejects NaN
        whole = "whole " if kind is int else ""
        raise BadRequest(f"{name} must be a {whole}number from {lo:g} to {hi:g}{why}.")
    return value


def more_moments(query: Query, hits: list[Hit]) -> dict[int, int]:
    """How many more moments than shown each video has, for the videos that reached the per-video cap (what the cap
    hides; further moments of other videos come with a larger k). Costs a query encoding per such video."""
    if not query.per_video or any(h.weak for h in hits):
        return {}
    shown = Counter(h.source_id for h in hits if h.kind == "video")
    more = {sid: len(state().index.video(sid, query)[1]) - n for sid, n in shown.items() if n >= query.per_video}
    return {sid: n for sid, n in more.items() if n > 0}


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
    _check_shape(*image.size, limits.max_pixels)
    try:
        with limits.decoding:
            return limits.index.query_image(image)
    except Exception:
        raise BadRequest("The image is damaged and cannot be decoded.") from None
    finally:
        _trim()


def _trim() -> None:
    """Give the memory freed after decoding back to the system. glibc keeps freed memory in each thread's arena for
    later use: without this, 500 uploads of long images (up to 240 MB each while decoded) left the server 1.3 GB
    larger (python -m benchmarks.load)."""
    if TRIM is not None:
        TRIM(0)


def _check_shape(width: int, height: int, max_pixels: int) -> None:
    """Refuse, from its declared size, an image whose decoding would take much memory, or whose decoded picture
    would (the picture kept is shrunk only to a short side of twice the model's input: its long side follows)."""
    if width * height > max_pixels:
        raise BadRequest(f"The image has too many pixels to open safely ({width}×{height}).")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise BadRequest(f"The image is too long and narrow to search with ({width}×{height}): crop it to at most "
                         f"{MAX_ASPECT} times as long as it is wide.")
