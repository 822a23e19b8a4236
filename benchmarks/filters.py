"""Filtered search at scale: latency of Index.search with a filter that keeps 1 % of the frames, and that k results
come back.

    python -m benchmarks.filters [--frames 1000000] [--queries 100] [--work DIR] [--quick]

The library is benchmarks.common's synthetic clustered 512-d unit vectors written into a real catalog: 99 % of the
frames in videos of 1,000 frames (in 100 folders, one made a day, 1,000 to 1,099 s long) and 1 % in photos of one
frame each, interleaved with the videos (their frame ids spread over the whole index). The FAISS index is the kind
vidsearch picks for that size (IVF at 1M frames). Each filter below keeps about 1 % of the frames, in a different
way: one folder, the photos, ten days, the longest videos; then one video (1,000 frames) and all the videos (99 %:
built from the 1 % left out). Filters keeping at most vectors.BRUTE_LIMIT frames are searched by brute force.

A query is `Index.search(text, k=10, per_video=0, min_score=-1)` with the filter: encoding the text (ViT-B-32
with random weights, as `bench search`), the filtered FAISS search, moments and the catalog lookup.
"first" is the first query with a filter: it reads the filter's frames from the catalog (cached until the catalog
changes). "CPU" is the process's CPU time a query (all its threads): what a query costs whatever else the machine
runs, where wall-clock times also count the waits for a core. recall@10 compares the top 10 of the 100 nearest
frames the filtered search hands to moments (VectorCache.search, what search.py asks for a page of 10) with the
exact nearest among the kept frames, for held-out vectors of the library's clusters.
"""
from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import TINY, library, machine, random_vit_b32, table
from vidsearch.store import Store

PER_VIDEO = 1000
FOLDERS = 100
DAY0 = dt.date(2015, 1, 1)


def layout(n: int) -> tuple[int, int]:
    """(videos, photos) for n frames: 1 % photos."""
    photos = n // 100
    return (n - photos) // PER_VIDEO, photos


def fill(root: Path, n: int, model: str, dim: int) -> float:
    """The library of n frames in a real index folder, its FAISS index built; seconds (0: an earlier run left it)."""
    import shutil

    if Store.exists(root):
        store = Store(root)
        done = store.catalog.counts()["frames"] == n and store.vectors.path.exists()
        store.close()
        if done:
            return 0.0
    t = time.perf_counter()
    shutil.rmtree(root, ignore_errors=True)
    videos, photos = layout(n)
    store = Store.create(root, model=model, pretrained="", dim=dim, interval=1.0, min_score=0.2)
    stream, buf = library(videos * PER_VIDEO + photos, d=dim), np.zeros((0, dim), np.float32)

    def take(m: int) -> np.ndarray:  # the library's next m vectors, 100,000 made at a time
        nonlocal buf
        while len(buf) < m:
            buf = np.concatenate([buf, next(stream)])
        out, buf = buf[:m], buf[m:]
        return out

    photo = 0
    with store.catalog.write():
        for v in range(videos):
            duration = 1000.0 + v % 100
            created = _epoch(DAY0 + dt.timedelta(days=v)) + 43200
            store.catalog.add_source(f"/library/f{v % FOLDERS:02d}/v{v:05d}.mp4", "video", 0, 0, duration, 30, 1280,
                                     720, [i * duration / PER_VIDEO for i in range(PER_VIDEO)], take(PER_VIDEO),
                                     created=created)
            while photo < photos * (v + 1) // videos:  # photos between the videos: ids all over the index
                store.catalog.add_source(f"/library/photos/p{photo:06d}.jpg", "image", 0, 0, 0, 0, 4000, 3000,
                                         [0.0], take(1), created=_epoch(DAY0) + 86400 * (photo % videos))
                photo += 1
    store.save_vectors()  # builds the kind this size calls for
    store.close()
    return time.perf_counter() - t


def _epoch(day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time()).timestamp()


def filters(n: int) -> dict[str, dict]:
    videos, _ = layout(n)
    return {
        "none": {},
        "one folder (1 %)": {"folder": "/library/f00"},
        "photos (1 %)": {"kind": "image"},
        "ten days (1 %)": {"after": DAY0, "before": DAY0 + dt.timedelta(days=max(videos // 100, 1) - 1)},
        "longest videos (1 %)": {"min_duration": 1099},
        "one video (0.1 %)": {"folder": "/library/f00/v00000.mp4"},
        "videos (99 %)": {"kind": "video"},
    }


def warm(root: Path) -> None:
    """Read the catalog once, as a library searched every day sits in the page cache (a query reads the vectors of
    its ~100 candidates from it)."""
    with open(root / "catalog.sqlite", "rb") as f:
        while f.read(16 << 20):
            pass


def measure(root: Path, n: int, queries: int) -> list[list]:
    """Index.search with each filter: first query, p50/p95 and CPU of the next ones, results per query."""
    from vidsearch import Index, vectors
    from vidsearch.search import Query, source_filter

    warm(root)
    idx = Index(root)
    idx.embedder.encode_text(["warm up"])  # the model's load and first run are not query time
    idx.search("warm up", k=10)  # FAISS file load and sync
    catalog = Store(root).catalog
    rows = []
    for name, fields in filters(n).items():
        where = source_filter(Query(**fields))
        t = time.perf_counter()
        idx.search(f"{name} first", k=10, per_video=0, min_score=-1, **fields)
        cold = (time.perf_counter() - t) * 1000
        times, cpu, counts = [], [], []
        for i in range(queries):
            t, c = time.perf_counter(), time.process_time()
            hits = idx.search(f"{name} query {i}", k=10, per_video=0, min_score=-1, **fields)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
            counts.append(len(hits))
        kept = n if where is None else catalog.kept_by(where)[0]
        how = ("brute force" if where is not None and kept <= vectors.BRUTE_LIMIT
               else vectors.kind_for(n) + (" + selector" if where is not None else ""))
        rows.append([name, f"{kept:,}", how, f"{cold:.1f}" if where is not None else "",
                     f"{np.percentile(times, 50):.1f}", f"{np.percentile(times, 95):.1f}", f"{np.median(cpu):.1f}",
                     f"{min(counts)}–{max(counts)}" if min(counts) != max(counts) else str(min(counts))])
    catalog.close()
    idx.close()
    return rows


def recall(root: Path, n: int, queries: int) -> list[list]:
    """recall@10 of the 100 frames a filtered search hands to moments, against the exact nearest kept frames."""
    from vidsearch.search import Query, source_filter

    store = Store(root)
    ids = np.sort(store.catalog.frame_ids())
    vecs = np.empty((len(ids), store.vectors.dim), np.float32)
    for s in range(0, len(ids), 10_000):
        got = store.catalog.vectors(ids[s:s + 10_000].tolist())
        vecs[s:s + len(got)] = np.stack([got[i] for i in ids[s:s + 10_000]])
    qs = next(library(queries, noise_seed=12345, d=store.vectors.dim))
    rows = []
    for name, fields in filters(n).items():
        where = source_filter(Query(**fields))
        if where is None or not store.catalog.kept_by(where)[0]:
            continue
        keep = np.isin(ids, store.catalog.frame_ids_by(where))
        kept_ids, kept_vecs = ids[keep], vecs[keep]
        found = 0
        for q in qs:
            truth = set(kept_ids[np.argsort(-(kept_vecs @ q))[:10]].tolist())
            _, got = store.vectors.search(q[None, :], 100, where)
            found += len(truth & set(got[0][:10].tolist()))
        rows.append([name, f"{found / (10 * len(qs)):.3f}"])
    store.close()
    return rows


def compare_small(root: Path, queries: int) -> list[list]:
    """The one-folder and one-video filters searched both ways: brute force over their cached vectors, and FAISS
    with a selector (VectorCache.search for 100 frames, no text encoding), against the unfiltered search. A fresh
    Store for each: nothing cached."""
    from vidsearch import vectors
    from vidsearch.search import Query, source_filter

    store = Store(root)
    qs = next(library(queries, noise_seed=777, d=store.vectors.dim))

    runs = [("whole index", f"{vectors.kind_for(store.catalog.counts()['frames'])}, no filter", None, 0)]
    store.close()
    for name, fields in (("one video", {"folder": "/library/f00/v00000.mp4"}),
                         ("one folder", {"folder": "/library/f00"})):
        where = source_filter(Query(**fields))
        runs += [(name, "brute force", where, 10**9), (name, "FAISS selector", where, 0)]
    rows = []
    for name, how, where, limit in runs:
        vectors.BRUTE_LIMIT = limit
        store = Store(root)
        store.vectors.synced()  # loading the FAISS file is not the filter's first query
        t = time.perf_counter()
        store.vectors.search(qs[:1], 100, where)
        cold = (time.perf_counter() - t) * 1000
        times, cpu = [], []
        for q in qs:
            t, c = time.perf_counter(), time.process_time()
            store.vectors.search(q[None, :], 100, where)
            times.append((time.perf_counter() - t) * 1000)
            cpu.append((time.process_time() - c) * 1000)
        rows.append([name, how, f"{cold:.1f}" if where is not None else "", f"{np.percentile(times, 50):.2f}",
                     f"{np.percentile(times, 95):.2f}", f"{np.median(cpu):.2f}"])
        store.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "vidsearch-filters")
    ap.add_argument("--quick", action="store_true", help="20,000 frames, 5 queries, the test model (64-d)")
    args = ap.parse_args()
    if args.quick:
        args.frames, args.queries = 20_000, 5
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    model = TINY if args.quick else random_vit_b32(args.work / "vit-b-32-random")
    dim = 64 if args.quick else 512
    root = args.work / f"filters_{args.frames}_{dim}"
    build = fill(root, args.frames, model, dim)
    print(f"library: {args.frames:,} frames" + (f", built in {build:.0f} s" if build else " (built earlier)"))
    table(f"Index.search(text, k=10, per_video=0, min_score=-1) with a filter, {args.frames:,} frames, "
          f"{args.queries} queries each (ms)",
          ["filter", "frames kept", "searched by", "first", "p50", "p95", "CPU p50", "results"],
          measure(root, args.frames, args.queries))
    table("recall@10 of the filtered search (held-out frames)", ["filter", "recall@10"],
          recall(root, args.frames, args.queries))
    table("The vector search alone: the 100 nearest frames (VectorCache.search, no text encoding; ms)",
          ["filter", "how", "first", "p50", "p95", "CPU p50"], compare_small(root, args.queries))


if __name__ == "__main__":
    main()
