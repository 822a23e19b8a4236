"""Errors as people and programs read them: {"error": "one sentence"} with its 4xx status under /api/, a page
elsewhere; a QueryError is a 400."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import BadRequest, HTTPException, RequestEntityTooLarge, ServiceUnavailable
from werkzeug.wrappers import Response

from ..errors import ModelLoadError, QueryError
from ..format import fmt_bytes


def init_app(app: Flask, max_upload: int) -> None:
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

    @app.errorhandler(ModelLoadError)  # the model loads after the app starts (Index.warm)
    def model_error(e: ModelLoadError) -> Response | HTTPException:
        return http_error(ServiceUnavailable(str(e)))
