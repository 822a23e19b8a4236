"""The Flask app factory: opens the index, loads the model once, and wires the blueprints and error pages."""
from __future__ import annotations

import hashlib
import hmac
import os
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect, render_template, request
from PIL import Image
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge, Unauthorized
from werkzeug.routing import BaseConverter
from werkzeug.wrappers import Response

from ..format import fmt_bytes
from ..index import Index
from ..errors import QueryError
from . import api, media, pages
from .state import WebState

DEFAULT_MAX_UPLOAD = 20 * 1024 * 1024
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and the small fields sent along with an upload

CSP = ("default-src 'self'; img-src 'self' data:; media-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")

AUTH_COOKIE = "vidsearch_auth"
AUTH_COOKIE_AGE = 30 * 24 * 3600


class IdConverter(BaseConverter):
    """A catalog id: plain ASCII digits that fit SQLite's 64-bit integers (anything else is a 404)."""

    regex = r"[0-9]{1,18}"

    def to_python(self, value: str) -> int:
        return int(value)

    def to_url(self, value: int) -> str:
        return str(int(value))


def _same(given: str | None, expected: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str (a client can send any text).
    return given is not None and hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def create_app(index: Index | str | os.PathLike, *, max_upload: int = DEFAULT_MAX_UPLOAD,
               max_pixels: int | None = None, auth: str | None = None) -> Flask:
    """The web app over an existing index. Loads the model now (seconds), so that the first search is fast and a
    model that cannot be loaded fails here rather than on a request (raises StoreError, ModelLoadError).
    With `auth`, every route but static files needs `Authorization: Bearer AUTH` or the cookie that visiting any
    page once with `?token=AUTH` sets."""
    if auth is not None and not auth:
        raise ValueError("auth must be a non-empty token")
    idx = index if isinstance(index, Index) else Index(index)
    idx.counts()  # raises StoreError if there is no index, before a model is loaded for nothing
    idx.embedder.encode_text([""])  # loads the model and its text tower's runtime (exported once per model)

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_upload + FORM_OVERHEAD
    app.json.sort_keys = False
    app.url_map.converters["id"] = IdConverter
    app.extensions["vidsearch"] = WebState(idx, max_upload, max_pixels or Image.MAX_IMAGE_PIXELS)
    for module in (pages, media, api):
        app.register_blueprint(module.bp)

    if auth:
        # The cookie holds a digest of the token, not the token, so that a leaked cookie jar does not give it away.
        cookie_value = hmac.new(auth.encode(), b"vidsearch-cookie", hashlib.sha256).hexdigest()

        @app.before_request
        def require_auth() -> Response | None:
            if request.endpoint == "static":
                return None
            header = request.headers.get("Authorization", "")
            if header[:7].lower() == "bearer " and _same(header[7:].strip(), auth):
                return None
            token = request.args.get("token")
            if token is not None and _same(token, auth) and request.method in ("GET", "HEAD"):
                rest = [(k, v) for k, v in request.args.items(multi=True) if k != "token"]
                response = redirect(request.path + ("?" + urlencode(rest) if rest else ""), code=303)
                response.set_cookie(AUTH_COOKIE, cookie_value, max_age=AUTH_COOKIE_AGE, httponly=True,
                                    samesite="Lax", secure=request.is_secure)
                response.headers["Cache-Control"] = "no-store"
                return response
            if _same(request.cookies.get(AUTH_COOKIE), cookie_value):
                return None
            raise Unauthorized("This server needs a token: open it once with ?token=TOKEN, or send "
                               "Authorization: Bearer TOKEN.", www_authenticate=["Bearer"])

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException) -> Response | HTTPException:
        if e.code is None or e.code < 400:
            return e  # redirects raised by routing
        message = e.description
        if isinstance(e, RequestEntityTooLarge) and request.content_length and \
                request.content_length > app.config["MAX_CONTENT_LENGTH"]:
            message = f"The upload is larger than the limit of {fmt_bytes(max_upload)}."
        if request.path.startswith("/api/"):
            response = jsonify(error=message)
        else:
            response = Response(render_template("error.html", code=e.code, title=e.name, message=message),
                                mimetype="text/html")
        response.status_code = e.code
        for name, value in e.get_headers():
            if name.lower() != "content-type":  # keeps Allow, Retry-After, Content-Range */size
                response.headers[name] = value
        return response

    @app.errorhandler(QueryError)
    def query_error(e: QueryError) -> Response | HTTPException:
        return http_error(BadRequest(str(e)))

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", CSP)
        return response

    return app
