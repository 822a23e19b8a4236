"""What the views share: the open index and recently uploaded query images, kept on the app."""
from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from flask import current_app
from werkzeug.exceptions import NotFound

from ..catalog import Source
from ..index import Index

if TYPE_CHECKING:
    from ..watch import Watcher

DECODES = 1  # uploads decoded at once: an 89-megapixel PNG (Pillow's limit) takes 1.2 GB while it is decoded
NOT_WATCHING = {"state": "idle", "files_done": 0, "files_total": 0, "file": None, "last_run": None, "error": None}


class RecentImages:
    """Uploaded query images (decoded RGB arrays) under random tokens: the newest `size`, and no more than
    `max_bytes` of them in all, whatever their shapes (the oldest go first; an image larger than that is not kept).

    A watch page opened from an image search cannot re-upload the image: its URL carries the token instead, and
    redoes the query from the image kept here. An evicted token is simply unknown."""

    def __init__(self, size: int = 64, max_bytes: int = 64 * 1024 * 1024):
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0  # of the arrays kept
        self._images: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, rgb: np.ndarray) -> str:
        token = secrets.token_urlsafe(12)
        if rgb.nbytes > self.max_bytes:
            return token  # known to no one: its watch pages say the image is no longer kept
        with self._lock:
            self._images[token] = rgb
            self.bytes += rgb.nbytes
            while len(self._images) > self.size or self.bytes > self.max_bytes:
                self.bytes -= self._images.popitem(last=False)[1].nbytes
        return token

    def get(self, token: str) -> np.ndarray | None:
        with self._lock:
            rgb = self._images.get(token)
            if rgb is not None:
                self._images.move_to_end(token)
            return rgb


@dataclass
class WebState:
    index: Index
    max_upload: int  # bytes
    max_pixels: int  # of an uploaded image, before it is decoded
    images: RecentImages = field(default_factory=RecentImages)
    decoding: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(DECODES))
    watcher: Watcher | None = None  # `serve --watch`: keeps the index current with the served folders

    def watch_status(self) -> dict:
        """The folder watcher's state (see Watcher.status), with "watching": whether there is one."""
        if self.watcher is None:
            return {"watching": False, **NOT_WATCHING}
        return {"watching": True, **self.watcher.status()}


def state() -> WebState:
    return current_app.extensions["vidsearch"]


def source_or_404(source_id: int, kind: str | None = None) -> Source:
    """A source of the index: the only place a served file's path ever comes from."""
    source = state().index.source(source_id)
    if source is None or (kind is not None and source.kind != kind):
        raise NotFound(f"There is no {kind or 'source'} {source_id} in the index.")
    return source
