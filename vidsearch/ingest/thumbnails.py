"""Thumbnails: every sampled frame becomes a small JPEG, staged as a file until its source is committed.

Staging keeps a long video's thumbnails on disk rather than in memory; Store.put_source moves them into place in
the same transaction as the frames. The local decode threads, the Ray workers (encoding) and the Ray driver
(staging) share these, so the JPEG settings and the full-disk handling are written once.
"""
from __future__ import annotations

import contextlib
import shutil
import uuid
from pathlib import Path

import cv2
import numpy as np

from ..errors import MediaError, WriteError
from ..extract.frames import shrink
from ..store import staging_dir

THUMB_QUALITY = 85


def thumbnail_jpeg(rgb: np.ndarray) -> bytes:
    small = shrink(rgb)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
    if not ok:
        raise MediaError("a frame could not be encoded as a JPEG thumbnail")
    return jpeg.tobytes()


def stage_jpeg(jpeg: bytes, staging: Path, root: Path) -> Path:
    """Write a thumbnail into the staging folder (safe from any thread: the names are random)."""
    path = staging / f"{uuid.uuid4().hex}.jpg"
    try:
        path.write_bytes(jpeg)  # raises on a full disk, where cv2.imwrite would only return False
    except OSError as e:
        path.unlink(missing_ok=True)
        raise WriteError(root, e) from e
    return path


def fresh_staging(root: Path) -> Path:
    """The staging folder of the index at `root`, emptied of what a killed run left (the caller holds the writer
    lock)."""
    staging = staging_dir(root)
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir(parents=True)
    except OSError as e:
        raise WriteError(root, e) from e
    return staging


def clear_staging(staging: Path) -> None:
    """Remove the thumbnails of sources never committed; the folder stays for the next run."""
    with contextlib.suppress(OSError):
        for f in staging.iterdir():
            f.unlink(missing_ok=True)
