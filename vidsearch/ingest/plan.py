"""Planning a run: which files under the given paths are new or changed (to index), which indexed ones are gone
(to remove) or offline (to keep), which failed before and have not changed since (still skipped, not retried), how
many are unchanged.

Costs a directory walk and a stat per file, and a listing of each folder that held an indexed file not found;
nothing is opened (runs.Run.start then looks among the files to index for moved sources and byte copies:
ingest/copies.py). Runs in the indexing process, before any producer. A byte copy's path counts as indexed:
unchanged, it is left alone; changed, it is indexed as a source of its own; gone, it is forgotten.

Offline is not gone: an indexed source whose file is not found is gone only when its folder can be listed and shows
something, and the file is not there. A folder that is missing, empty or unreadable is a drive not mounted, a share
not connected, a folder renamed: its sources stay, marked offline (still found by searches), until their files are
seen again, a new file turns out to be one of them moved, or a run with `prune` drops them. Copies and skip records
hold no vectors: they are forgotten whenever their file is not found, as before.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import NamedTuple

from ..catalog import Source
from ..extract import Candidate, discover
from ..store import Store


class Plan(NamedTuple):
    """A tuple, so that plan()'s callers (and tests wrapping it) may unpack it."""

    todo: list[Candidate]  # new or changed files, to decode and embed
    gone: list[str]  # indexed (sources or copies) or skipped paths whose files are no longer there
    skipped: list[tuple[str, str]]  # (path, reason): unreadable, or failed before and unchanged since
    unchanged: int
    offline: dict[str, list[Source]]  # a given path -> its sources not found whose folder could not be listed
    back: list[str]  # sources marked offline whose files are there again, unchanged
    unprinted: list[str]  # unchanged sources without a fingerprint (indexed before they were kept)


def is_under(path: str, tops: list[str]) -> bool:
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
    unlisted = [p for p, _ in problems]  # folders the walk could not list: nothing under them was looked for
    sources = {r.path: r for r in store.catalog.sources()}
    indexed = sources | {r.path: r for r in store.catalog.copies()}
    known_bad = {r.path: r for r in store.catalog.skipped()}
    todo, unchanged, back, unprinted = [], 0, [], []
    for c in found.values():
        row = indexed.get(c.path) or known_bad.get(c.path)
        if row is not None and row.size == c.size and row.mtime == c.mtime:
            if c.path in known_bad:
                problems.append((c.path, known_bad[c.path].reason))  # unchanged since it failed: not retried
                continue
            unchanged += 1
            if (s := sources.get(c.path)) is not None:
                back += [s.path] if s.offline_since is not None else []
                unprinted += [s.path] if s.fingerprint is None else []
        else:
            todo.append(c)
    gone, offline = [], {}
    listed: dict[str, bool] = {}
    for p, row in indexed.items():
        if p in found or not is_under(p, tops):
            continue
        if p in sources and (is_under(p, unlisted) or not shows_files(os.path.dirname(p), listed)):
            offline.setdefault(next(t for t in tops if is_under(p, [t])), []).append(row)
        elif not os.path.lexists(p):  # there but not walked (a hidden folder indexed by name): left as it is
            gone.append(p)
    gone += [p for p in known_bad if p not in found and is_under(p, tops)]
    return Plan(todo, gone, problems, unchanged, offline, back, unprinted)


def shows_files(folder: str, listed: dict[str, bool] | None = None) -> bool:
    """Whether `folder` can be listed and holds something visible: only then is a file not found in it proven gone
    (a drive that is not mounted leaves its mount point empty, or no folder at all). `listed` caches the answers."""
    listed = {} if listed is None else listed
    if folder not in listed:
        try:
            with os.scandir(folder) as entries:
                listed[folder] = any(not e.name.startswith(".") for e in entries)
        except OSError:
            listed[folder] = False
    return listed[folder]


def vanished(c: Candidate) -> str | None:
    """Why the file can no longer be indexed as planned, if it was deleted or changed since it was found."""
    try:
        st = os.stat(c.path)
    except FileNotFoundError:
        return "the file was deleted while it was being indexed"
    if (st.st_size, st.st_mtime) != (c.size, c.mtime):
        return "the file changed while it was being indexed (the next run takes it again)"
    return None
