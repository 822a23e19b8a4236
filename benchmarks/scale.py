"""Search beyond RAM: build time, RAM and disk per frame, latency and recall@10 of each FAISS kind at 1M+ frames.

    python -m benchmarks.scale [--sizes 1000000] [--kinds exact,ivf,ivfpq] [--rerank 10] [--queries 200]
                               [--cold 50] [--work DIR] [--quick]

The library is benchmarks.common's synthetic clustered 512-d unit vectors (4,096 centres), written into a real
catalog (1,000 frames a source, through Catalog.write and add_source). Each kind is built from the catalog and then
queried in fresh processes, so RSS figures are that kind's alone. A query is what search.py asks the store for a
page of 10 moments: the 100 nearest frames (VectorCache.search, with the compressed kind's re-ranking from the
catalog; no text encoding), and recall@10 is the overlap of their top 10 with the exact top 10, for held-out frames
of the same library ("more like this") and for vectors off the library's clusters (`bench search`'s held-out
queries; text queries sit apart from image embeddings too). --quick: 5,000 frames, exact and IVF (IVF-PQ's training
alone takes most of a minute), 20 queries.
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, D, fill_catalog, library, synthetic

WANT = 100  # frames search.py asks for, for k = 10 moments


def queries(count: int) -> dict[str, np.ndarray]:
    return {"held-out frames": next(library(count, noise_seed=12345)), "off-cluster": synthetic(count, seed=1)}


def rss_mb(field: str = "VmRSS") -> float:
    """This process's resident memory now (VmHWM: its peak; getrusage's would count the parent's from the fork)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024


def truth(root: Path, n: int, qs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Exact top-10 ids for each query set, by brute force over the library."""
    path = root / f"truth_{len(next(iter(qs.values())))}.npz"
    if path.exists():
        return dict(np.load(path))
    allq = np.concatenate(list(qs.values()))
    best_s = np.full((len(allq), 10), -np.inf, np.float32)
    best_i = np.zeros((len(allq), 10), np.int64)
    done = 0
    for chunk in library(n):
        s = np.concatenate([best_s, allq @ chunk.T], axis=1)
        ids = np.broadcast_to(np.arange(done + 1, done + len(chunk) + 1), (len(allq), len(chunk)))
        i = np.concatenate([best_i, ids], axis=1)
        top = np.argsort(-s, axis=1)[:, :10]
        best_s, best_i = np.take_along_axis(s, top, 1), np.take_along_axis(i, top, 1)
        done += len(chunk)
    out, at = {}, 0
    for name, q in qs.items():
        out[name] = best_i[at:at + len(q)]
        at += len(q)
    np.savez(path, **out)
    return out


def m_build(root: str, kind: str) -> dict:
    from vidsearch.catalog import Catalog
    from vidsearch.vectors import Vectors

    catalog = Catalog(root)
    ids = catalog.frame_ids()
    t = time.perf_counter()
    v = Vectors.build(kind, D, ids, catalog.vectors)
    build = time.perf_counter() - t
    path = Path(root) / f"{kind}.faiss"
    v.save(path)
    return {"build_s": build, "file_bytes": path.stat().st_size}


def m_query(root: str, kind: str, count: int, cold: int, rerank: int) -> dict:
    from vidsearch import vectors
    from vidsearch.catalog import CATALOG
    from vidsearch.store import Store

    vectors.RERANK = rerank
    qs = queries(count)
    # The kind's file becomes the index's FAISS cache (the catalog is unchanged since, so opening it needs no
    # catching up); a hard link, put in place atomically as VectorCache.save would.
    cache = Path(root) / vectors.VECTORS
    tmp = cache.with_name(cache.name + ".link")
    tmp.unlink(missing_ok=True)
    os.link(Path(root) / f"{kind}.faiss", tmp)
    os.replace(tmp, cache)
    store = Store(root)
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # else the index reuses freed heap and RSS understates it
    before = rss_mb()
    store.vectors.search(qs["held-out frames"][:5], WANT)  # loads the file; warm
    loaded = store.vectors.synced()
    assert loaded.kind == kind, f"the cache loaded a {loaded.kind} index, not {kind}"
    out = {"rss_delta_mb": rss_mb() - before, "n": loaded.ntotal}
    for name, q in qs.items():
        lat, got = [], []
        for row in q:
            t = time.perf_counter()
            got.append(store.vectors.search(row[None, :], WANT)[1][0][:10])
            lat.append(time.perf_counter() - t)
        out[name] = {"p50_ms": 1000 * float(np.median(lat)), "p95_ms": 1000 * float(np.percentile(lat, 95)),
                     "ids": np.array(got).tolist()}
    if cold:
        # The catalog's pages dropped from the page cache before each query: re-ranking reads from the disk, as
        # when the catalog is far bigger than RAM.
        fd = os.open(Path(root) / CATALOG, os.O_RDONLY)
        lat = []
        for row in qs["held-out frames"][:cold]:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            t = time.perf_counter()
            store.vectors.search(row[None, :], WANT)
            lat.append(time.perf_counter() - t)
        os.close(fd)
        out["cold"] = {"p50_ms": 1000 * float(np.median(lat)), "p95_ms": 1000 * float(np.percentile(lat, 95))}
    return out


def child(name: str, *args) -> dict:
    p = subprocess.run([sys.executable, "-m", "benchmarks.scale", "_measure", name, json.dumps(args)],
                       capture_output=True, text=True, cwd=ROOT)
    if p.returncode:
        sys.exit(f"{name}{args} failed:\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        import faiss  # noqa: F401  (loaded before the first RSS reading, like every real reader)

        out = {"build": m_build, "query": m_query}[sys.argv[2]](*json.loads(sys.argv[3]))
        out["peak_rss_mb"] = rss_mb("VmHWM")
        print(json.dumps(out))
        return
    from vidsearch.vectors import RERANK

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000", help="library sizes in frames, comma-separated")
    ap.add_argument("--kinds", default="exact,ivf,ivfpq")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--rerank", default=str(RERANK), help="re-ranking depths (× k) to time the compressed kind at")
    ap.add_argument("--cold", type=int, default=50, help="queries timed with the catalog out of the page cache")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "vidsearch-scale")
    ap.add_argument("--quick", action="store_true", help="5,000 frames, exact and IVF, 20 queries")
    args = ap.parse_args()
    if args.quick:
        args.sizes, args.kinds, args.queries = "5000", "exact,ivf", 20
    from vidsearch.catalog import CATALOG

    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        root = args.work / f"lib_{n}"
        root.mkdir(parents=True, exist_ok=True)
        print(f"{n:,} frames: catalog ...", flush=True)
        fill_s = fill_catalog(root, n)
        gt = truth(root, n, queries(args.queries))
        catalog = (root / CATALOG).stat().st_size
        print(f"  catalog {catalog / n:.0f} B/frame (filled in {fill_s:.0f} s)", flush=True)
        for kind in args.kinds.split(","):
            b = child("build", str(root), kind)
            for rerank in [int(x) for x in args.rerank.split(",")] if kind == "ivfpq" else [RERANK]:
                q = child("query", str(root), kind, args.queries, args.cold if kind == "ivfpq" else 0, rerank)
                recall = {name: float(np.mean([len(set(a) & set(g)) / 10 for a, g in zip(q[name]["ids"], gt[name])]))
                          for name in gt}
                r = {"n": n, "kind": kind if kind != "ivfpq" else f"ivfpq, re-rank {rerank}×k",
                     "build_s": b["build_s"], "build_peak_rss_mb": b["peak_rss_mb"],
                     "ram_b_per_frame": q["rss_delta_mb"] * 2**20 / n, "faiss_b_per_frame": b["file_bytes"] / n,
                     "catalog_b_per_frame": catalog / n,
                     **{f"{name} {p}": q[name][p] for name in gt for p in ("p50_ms", "p95_ms")},
                     **{f"recall@10 {name}": v for name, v in recall.items()}, "cold": q.get("cold")}
                print("  " + json.dumps(r), flush=True)
                rows.append(r)
    print("\n| frames | kind | build | RAM/frame | FAISS file/frame | p50 / p95 | recall@10 (held-out / off-cluster) |"
          " cold re-rank p50 / p95 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        cold = f"{r['cold']['p50_ms']:.1f} / {r['cold']['p95_ms']:.1f} ms" if r["cold"] else "–"
        print(f"| {r['n']:,} | {r['kind']} | {r['build_s']:.0f} s | {r['ram_b_per_frame']:.0f} B |"
              f" {r['faiss_b_per_frame']:.0f} B |"
              f" {r['held-out frames p50_ms']:.1f} / {r['held-out frames p95_ms']:.1f} ms"
              f" | {r['recall@10 held-out frames']:.3f} / {r['recall@10 off-cluster']:.3f} | {cold} |")


if __name__ == "__main__":
    main()
