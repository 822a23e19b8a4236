"""Planning a run: which files under the given paths are new or changed (to index), which indexed ones are gone
(to remove), which failed before and have not changed since (still skipped, not retried), how many are unchanged.

Costs a directory walk and a stat per file; nothing is opened (runs.Run.start then looks among the files to index
for byte copies: ingest/copies.py). Runs in the indexing process, before any producer. A byte copy's path counts as
indexed: unchanged, it is left alone; changed, it is indexed as a source of its own; gone, it is forgotten.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import NamedTuple

from ..extract import Candidate, discover
from ..store import Store


class Plan(NamedTuple):
    """A tuple, so that plan()'s callers (and tests wrapping it) may unpack it."""

    todo: list[Candidate]  # new or changed files, to decode and embed
    gone: list[str]  # indexed (sources or copies) or skipped paths whose files are no longer there
    skipped: list[tuple[str, str]]  # (path, reason): unreadable, or failed before and unchanged since
    unchanged: int


def _is_under(path: str, tops: list[str]) -> bool:
    return any(path == t or path.startswith(t.rstrip(os.sep) + os.sep) for t in tops)


def plan(store: Store, paths: Iterable[str]) -> Plan:
    tops = [os.path.realpath(p) for p in paths]
    found: dict[str, Candidate] = {}
    problems: list[tuple[str, str]] = []
    for item in discover(tops, exclude=[str(store.root)]):
        if isinstance(item, Candidate):
            found[item.path] = item
        else:
            problems.append(item)
    indexed = {r.path: r for r in store.catalog.sources()} | {r.path: r for r in store.catalog.copies()}
    known_bad = {r.path: r for r in store.catalog.skipped()}
    todo, unchanged = [], 0
    for c in found.values():
        row = indexed.get(c.path) or known_bad.get(c.path)
        if row is not None and row.size == c.size and row.mtime == c.mtime:
            if c.path in known_bad:
                problems.append((c.path, known_bad[c.path].reason))  # unchanged since it failed: not retried
            else:
                unchanged += 1
        else:
            todo.append(c)
    gone = [p for p in indexed if p not in found and _is_under(p, tops)]
    gone += [p for p in known_bad if p not in found and _is_under(p, tops)]
    return Plan(todo, gone, problems, unchanged)


def vanished(c: Candidate) -> str | None:
    """Why the file can no longer be indexed as planned, if it was deleted or changed since it was found."""
    try:
        st = os.stat(c.path)
    except FileNotFoundError:
        return "the file was deleted while it was being indexed"
    if (st.st_size, st.st_mtime) != (c.size, c.mtime):
        return "the file changed while it was being indexed (the next run takes it again)"
    return None
