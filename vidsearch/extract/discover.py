"""Walk the user's paths and list the files worth opening."""
from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from PIL import Image

VIDEO_EXTS = {
    ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts", ".ogv", ".ogg",
    ".mts", ".m2ts", ".vob", ".qt",
}
# Pillow's own list, so every format it can open counts (jpg, png, webp, bmp, gif, tiff, mpo, ...).
IMAGE_EXTS = {ext for ext in Image.registered_extensions()} | {".heic", ".avif"}


@dataclass(frozen=True)
class Candidate:
    """A file that looks like media; whether it really is one is decided by opening it."""

    path: str  # absolute, symlinks resolved: one source per file however it was reached
    size: int
    mtime: float


def _looks_like_media(path: str, name: str) -> bool:
    ext = os.path.splitext(name)[1].lower()
    if ext in VIDEO_EXTS or ext in IMAGE_EXTS:
        return True
    # No media extension: an image still counts if Pillow recognises its header (cheap, reads a few bytes).
    try:
        with Image.open(path):
            return True
    except Exception:
        return False


def discover(paths: Iterable[str], exclude: Iterable[str] = ()) -> Iterator[Candidate | tuple[str, str]]:
    """Yield a Candidate per media file under `paths`, or (path, reason) for what could not be listed.

    Hidden files and folders and the `exclude` folders (the index itself) are skipped; symlinked folders are
    followed once, so loops end.
    """
    excluded = {os.path.realpath(p) for p in exclude}
    seen_dirs: set[tuple[int, int]] = set()
    seen_files: set[str] = set()
    for top in paths:
        top = os.path.abspath(top)
        for item in [top] if os.path.isfile(top) else _walk(top, excluded, seen_dirs):
            found = item if isinstance(item, tuple) else _candidate(item, seen_files)
            if found:
                yield found


def _walk(top: str, excluded: set[str], seen_dirs: set[tuple[int, int]]) -> Iterator[str | tuple[str, str]]:
    """The visible files under `top` in a stable order, and (path, reason) for folders that could not be listed."""
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(top, followlinks=True, onerror=errors.append):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen_dirs or os.path.realpath(dirpath) in excluded:
            dirnames[:] = []
            continue
        seen_dirs.add((st.st_dev, st.st_ino))
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        yield from (os.path.join(dirpath, name) for name in sorted(filenames) if not name.startswith("."))
        yield from _drain(errors)
    yield from _drain(errors)


def _candidate(path: str, seen: set[str]) -> Candidate | tuple[str, str] | None:
    real = os.path.realpath(path)
    if real in seen:
        return None
    seen.add(real)
    try:
        st = os.stat(real)
    except OSError as e:
        return (real, e.strerror or str(e))
    if not _looks_like_media(real, os.path.basename(path)):
        return None
    return Candidate(real, st.st_size, st.st_mtime)


def _drain(errors: list[OSError]) -> Iterator[tuple[str, str]]:
    while errors:
        e = errors.pop(0)
        yield (os.path.realpath(e.filename or ""), e.strerror or str(e))
