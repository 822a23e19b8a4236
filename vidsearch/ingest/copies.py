"""Byte copies and moves.

A new or changed file whose bytes equal an indexed source's, or another file's of the same run, is recorded as a
copy of it (catalog `copies`) with no decoding and no model pass. A file can only be a copy of one of the same size,
so contents are hashed only where sizes collide; an indexed source's hash is kept once computed.

A new file whose fingerprint (its size and three sampled blocks: cheap, whatever the file's length) equals that of
a source whose file is missing or offline is that source moved: it takes the source over, with nothing embedded
again. Every source gets its fingerprint when indexed (or, indexed before fingerprints, on the next run that finds
its file unchanged), because a file that is gone can no longer be read.
"""
from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from dataclasses import dataclass, field

from ..catalog import Source
from ..extract import Candidate
from ..store import Store
from .plan import is_under

CHUNK = 1 << 20
BLOCK = 64 << 10  # a fingerprint reads the first, middle and last this many bytes


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


def fingerprint(path: str) -> str | None:
    """blake2b of the file's size and of its first, middle and last BLOCK bytes (None if it cannot be read). Tells a
    moved file from another at the cost of three small reads; unlike content_hash, not proof of equal bytes."""
    h = hashlib.blake2b(digest_size=20)
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            h.update(size.to_bytes(8, "little"))
            for at in sorted({0, max(0, size // 2 - BLOCK // 2), max(0, size - BLOCK)}):
                f.seek(at)
                h.update(f.read(BLOCK))
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


def find_moves(store: Store, todo: list[Candidate], lost: set[str], tops: list[str]) -> list[tuple[Source, Candidate]]:
    """(source, file) for each new file among `todo` that is an indexed source moved: its fingerprint is the
    source's, and the source's file is missing. `lost`: the sources under the run's paths (`tops`) whose file was not
    found; a source elsewhere counts when its path no longer exists. Only files of a lost source's size are read."""
    if not todo:
        return []
    sources = store.catalog.sources()
    indexed = {s.path for s in sources}
    new = [c for c in todo if c.path not in indexed]
    sizes = {c.size for c in new}
    by_size: dict[int, list[Source]] = defaultdict(list)
    for s in sources:
        if s.fingerprint and s.size in sizes and _lost(s.path, lost, tops):
            by_size[s.size].append(s)
    moves, taken = [], set()
    for c in new:
        if not by_size.get(c.size):
            continue
        fp = fingerprint(c.path)
        s = next((s for s in by_size[c.size] if s.fingerprint == fp and s.id not in taken), None)
        if s is not None:
            taken.add(s.id)
            moves.append((s, c))
    return moves


def _lost(path: str, lost: set[str], tops: list[str]) -> bool:
    return path in lost or (not is_under(path, tops) and not os.path.lexists(path))


def fill_fingerprints(store: Store, paths: list[str], batch: int = 1000) -> None:
    """Fingerprint sources indexed before fingerprints were kept, whose files the plan found unchanged: three small
    reads per file, once; committed a batch at a time rather than a transaction per file."""
    for i in range(0, len(paths), batch):
        pairs = [(p, fp) for p in paths[i:i + batch] if (fp := fingerprint(p)) is not None]
        if pairs:
            store.set_fingerprints(pairs)
