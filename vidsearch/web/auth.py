"""An optional shared token: every route but static files then needs `Authorization: Bearer TOKEN` or the cookie
that visiting any page once with `?token=TOKEN` sets (HttpOnly, SameSite=Lax, holding a digest of the token)."""
from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from flask import Flask, redirect, request
from werkzeug.exceptions import Unauthorized
from werkzeug.wrappers import Response

AUTH_COOKIE = "vidsearch_auth"
AUTH_COOKIE_AGE = 30 * 24 * 3600


def _same(given: str | None, expected: str) -> bool:
    # Bytes, because compare_digest refuses non-ASCII str (a client can send any text).
    return given is not None and hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def init_app(app: Flask, auth: str) -> None:
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

