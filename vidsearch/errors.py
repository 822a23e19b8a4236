"""Every error a user of vidsearch may see. str() of each is one sentence meant for that user."""
from __future__ import annotations

import contextlib
import errno
import shutil
from pathlib import Path


class VidsearchError(Exception):
    """Base of vidsearch's own errors."""


class ModelLoadError(VidsearchError):
    """The model cannot be had (unknown name, missing weights, no network for a download)."""


class IndexMismatch(VidsearchError, ValueError):
    """Options that contradict what the existing index was built with."""


class StoreError(VidsearchError):
    """A problem with the index folder itself (none there, a format this vidsearch cannot read)."""


class WriteError(StoreError):
    """The index folder could not be written (most often: the disk is full). Whole sources committed before stay."""

    def __init__(self, root: Path, cause: BaseException, doing: str = "written"):
        text = str(cause)
        full = getattr(cause, "errno", None) == errno.ENOSPC or "disk is full" in text or "No space left" in text
        if not full:  # SQLite reports a shared-memory file it cannot extend as a "disk I/O error"
            with contextlib.suppress(OSError):
                full = shutil.disk_usage(root).free < 1 << 20
        reason = "the disk is full" if full else (getattr(cause, "strerror", None) or text.strip()
                                                  or type(cause).__name__)
        super().__init__(f"The index at {root} could not be {doing} ({reason}); it keeps every source indexed "
                         "before, and running the same command again once that is fixed carries on from there.")


class QueryError(VidsearchError, ValueError):
    """A query that cannot be run."""


class ClipError(QueryError):
    """A clip that cannot be cut: no such video, or a span that is empty, outside the video or over the limit."""


class MediaError(VidsearchError):
    """A file that cannot be indexed; str() is the reason shown next to its path."""


class Busy(VidsearchError):
    """Too many clips and browser-playable copies are being made already; asking again later works."""

    retry_after = 5  # seconds


class RayMissing(VidsearchError, ImportError):
    """Ray is not installed."""


class RayFailure(VidsearchError, RuntimeError):
    """Ray could not be reached, or a worker died; sources committed before stay, a re-run goes on from there."""


class OcrMissing(VidsearchError, ImportError):
    """Reading text in frames was asked for, and RapidOCR is not installed."""
