"""Byte copies: a new or changed file whose bytes equal an indexed source's, or another file's of the same run, is
recorded as a copy of it (catalog `copies`) with no decoding and no model pass. A file can only be a copy of one of
the same size, so contents are hashed only where sizes collide; an indexed source's hash is kept once computed.
"""
from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass, field

from ..catalog import Source
from ..extract import Candidate
from ..store import Store

CHUNK = 1 << 20


def content_hash(path: str) -> str | None:
    """blake2b of the whole file, read in chunks (None if it cannot be read: its decoder will say why)."""
    h = hashlib.blake2b(digest_size=20)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                h.update(chunk)
    except OSError:
        return None
    return h.hexdigest()


@dataclass
class Copies:
    """What find_copies made of a run's files."""

    todo: list[Candidate] = field(default_factory=list)  # to decode and embed
    of_indexed: list[tuple[Candidate, str]] = field(default_factory=list)  # (file, the source path it copies)
    of_todo: dict[str, list[Candidate]] = field(default_factory=dict)  # a file to index -> files with its bytes
    hashes: dict[str, str] = field(default_factory=dict)  # a file to index -> its hash, kept with its source


def find_copies(store: Store, todo: list[Candidate]) -> Copies:
    """Split a run's new and changed files into files to index and byte copies. Indexed sources whose own file is
    among `todo` (changed) are not compared with: their frames are of the old bytes."""
    by_size: dict[int, list[Candidate]] = defaultdict(list)
    for c in todo:
        by_size[c.size].append(c)
    changing = {c.path for c in todo}
    indexed: dict[int, list[Source]] = defaultdict(list)
    for s in store.catalog.sources():
        if s.size in by_size and s.path not in changing:
            indexed[s.size].append(s)
    out, copies = Copies(), set()
    for size, files in by_size.items():
        if len(files) == 1 and not indexed[size]:
            continue  # nothing it could be a copy of: not read
        known = {h: s.path for s in indexed[size] if (h := _indexed_hash(store, s))}
        first: dict[str, str] = {}
        for c in files:
            h = content_hash(c.path)
            if h is None:
                continue
            if h in known:
                out.of_indexed.append((c, known[h]))
            elif h in first:
                out.of_todo.setdefault(first[h], []).append(c)
            else:
                first[h], out.hashes[c.path] = c.path, h
                continue
            copies.add(c.path)
    out.todo = [c for c in todo if c.path not in copies]  # in the order discovery gave
    return out


def _indexed_hash(store: Store, s: Source) -> str | None:
    """An indexed source's hash: the stored one, else computed now if its file is as indexed (and then stored)."""
    if s.hash is not None:
        return s.hash
    try:
        st = os.stat(s.path)
    except OSError:
        return None
    if (st.st_size, st.st_mtime) != (s.size, s.mtime):
        return None
    h = content_hash(s.path)
    if h is not None:
        store.catalog.set_hash(s.path, h)
    return h
