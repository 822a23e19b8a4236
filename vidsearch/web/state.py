"""What the views share: the open index and the proxy maker, kept on the Flask app."""
from __future__ import annotations

from dataclasses import dataclass

from flask import current_app
from werkzeug.exceptions import NotFound

from ..index import Index
from .proxy import Proxies


@dataclass
class WebState:
    index: Index
    proxies: Proxies
    max_upload: int  # bytes
    max_pixels: int  # of an uploaded image, before it is decoded


def state() -> WebState:
    return current_app.extensions["vidsearch"]


def source_or_404(source_id: int, kind: str | None = None) -> dict:
    """The catalog row of a source, which is the only place a served file's path ever comes from."""
    row = state().index.store.source(source_id)
    if row is None or (kind is not None and row["kind"] != kind):
        raise NotFound(f"There is no {kind or 'source'} {source_id} in the index.")
    return dict(row)
