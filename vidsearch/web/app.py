"""The Flask app factory: opens the index, loads the model once, and wires the blueprints, errors and auth."""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask
from PIL import Image
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response

from ..index import Index
from . import api, boundary, media, pages
from . import auth as web_auth
from . import errors as web_errors
from .state import WebState

if TYPE_CHECKING:
    from ..watch import Watcher

DEFAULT_MAX_UPLOAD = 20 * 1024 * 1024
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small fields sent along with an upload

CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")

class IdConverter(BaseConverter):
    """A catalog id: plain ASCII digits that fit SQLite's 64-bit integers (anything else is a 404)."""

    regex = r"[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(int(value))


def create_app(index: Index | str | os.PathLike, *, max_upload: int = DEFAULT_MAX_UPLOAD,
               max_pixels: int | None = None, auth: str | None = None, watcher: Watcher | None = None,
               hosts: Iterable[str] = ()) -> Flask:
    """The web app over an existing index (raises StoreError if there is none). Starts loading the model and the
    vectors in the background (Index.warm), so that the app answers at once and its first search is as fast as the
    rest; a model that cannot be loaded makes the searches that need it a 503 with the reason.
    With `auth`, every route but static files needs `Authorization: Bearer AUTH` or the cookie that visiting any
    page once with `?token=AUTH` sets. A `watcher` (serve --watch) keeping `index` current is shown on the pages and
    at /api/status; the caller starts and stops it.
    Requests must name a loopback host (localhost, 127.0.0.0/8, ::1) or one of `hosts` (names and addresses the
    server is reached by; a wildcard address such as 0.0.0.0 allows any address), else they are 400; media, the
    API and uploads refuse other sites' pages (403). See boundary.py."""
    if auth is not None and not auth:
        raise ValueError("auth must be a non-empty token")
    idx = index if isinstance(index, Index) else Index(index)
    idx.counts()  # raises StoreError if there is no index, before a model is loaded for nothing
    idx.warm()

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_upload + FORM_OVERHEAD
    app.json.sort_keys = False
    app.url_map.converters["id"] = IdConverter
    app.extensions["vidsearch"] = web_state = WebState(idx, max_upload, max_pixels or Image.MAX_IMAGE_PIXELS,
                                                       watcher=watcher)
    for module in (pages, media, api):
        app.register_blueprint(module.bp)

    boundary.init_app(app, boundary.Hosts(hosts))  # before auth: a foreign page learns nothing, not even 401
    if auth:
        web_auth.init_app(app, auth)
    web_errors.init_app(app, max_upload)

    @app.context_processor
    def watching() -> dict:  # base.html's indexing line, there only while folders are watched
        return {"watch_status": web_state.watch_status() if web_state.watcher is not None else None}

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    return app
