"""A query's filters (kind, folder, dates, durations) in the catalog's terms, and the folders a search can be
limited to. They apply inside the nearest-neighbour search, so k results come back whenever k exist."""
from __future__ import annotations

import datetime as dt
import math
import os
import re

from ..catalog import SourceFilter
from ..errors import QueryError
from .query import KINDS, DateLike, Query


def parse_date(value: DateLike, name: str) -> dt.date:
    """A day from a datetime.date or "YYYY-MM-DD" (QueryError otherwise)."""
    if isinstance(value, dt.datetime):
        value = value.date()
    text = value.isoformat() if isinstance(value, dt.date) else str(value).strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = dt.date.fromisoformat(text)
            if 1000 <= day.year <= 9000:  # far-off years overflow local-time arithmetic
                return day
    except ValueError:
        pass
    raise QueryError(f"{name} must be a date written YYYY-MM-DD (got {text[:40]!r}).")


def _midnight(day: dt.date) -> float:
    """The UNIX time at which `day` starts in local time."""
    return dt.datetime.combine(day, dt.time()).timestamp()


def _seconds(value, name: str) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and x >= 0):
        raise QueryError(f"{name} must be a number of seconds, 0 or more.")
    return x


def media_folders(parents: list[str], limit: int = 1000) -> list[str]:
    """The folders holding media (`parents`), with the folders between them and the one they all share, sorted;
    at most `limit` (the shallowest first when there are more)."""
    if not parents:
        return []
    top = os.path.commonpath(parents)
    out = set()
    for folder in parents:
        while folder not in out:
            out.add(folder)
            if folder == top or os.path.dirname(folder) == folder:
                break
            folder = os.path.dirname(folder)
    if len(out) > limit:
        out = set(sorted(out, key=lambda f: (f.count(os.sep), f))[:limit])
    return sorted(out)


def source_filter(q: Query) -> SourceFilter | None:
    """The query's filters in the catalog's terms (None when it has none); QueryError when one is malformed or they
    contradict each other."""
    if not q.filtered:
        return None
    kind = q.kind or None
    if kind is not None and kind not in KINDS:
        raise QueryError("kind must be video or image.")
    folder = None
    if q.folder not in (None, ""):
        folder = os.path.normpath(os.path.abspath(os.fspath(q.folder)))
        if "\0" in folder:
            raise QueryError("folder must be a path.")
    after = parse_date(q.after, "after") if q.after not in (None, "") else None
    before = parse_date(q.before, "before") if q.before not in (None, "") else None
    if after and before and after > before:
        raise QueryError(f"after ({after}) is later than before ({before}).")
    lo = _seconds(q.min_duration, "min_duration") if q.min_duration not in (None, "") else None
    hi = _seconds(q.max_duration, "max_duration") if q.max_duration not in (None, "") else None
    if lo is not None and hi is not None and lo > hi:
        raise QueryError(f"min_duration ({lo:g} s) is more than max_duration ({hi:g} s).")
    if kind == "image" and (lo is not None or hi is not None):
        raise QueryError("A duration filter keeps videos only: it cannot be combined with kind=image.")
    return SourceFilter(kind, folder, _midnight(after) if after else None,
                        _midnight(before + dt.timedelta(days=1)) if before else None, lo, hi)
