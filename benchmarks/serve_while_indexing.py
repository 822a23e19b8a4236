"""`vidsearch serve` while `vidsearch index` adds to the same index from another process.

    python -m benchmarks.serve_while_indexing [--videos 12] [--threads 4] [--quick]

Indexes a small library, starts `vidsearch serve` on 127.0.0.1 (a free port) with the tiny test model, measures
search latency with nothing else running, then runs `vidsearch index` on a folder of new videos (10 s each, so
10 frames each) into the same index while client threads loop: /api/info (whose counts must always be whole
sources: frames = old frames + 10 × new sources), a text search over everything (k=50, no per-video cap, no minimum
score) and every hit's thumbnail. Prints the requests and errors during the run (goal 0), half-written sources seen
(goal 0), search latency p50/p95 idle and during the run, and whether the first request after the run sees every
new source (no restart). --quick: 2 new videos, 2 threads.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from benchmarks.common import TINY as MODEL
from benchmarks.common import segments_video
from vidsearch.index import Index

COLOURS = ["red", "green", "blue", "yellow", "orange", "purple"]
SEARCH = "/api/search?q=a+triangle&k=50&per_video=0&min_score=-1"


def get(url: str) -> tuple[int, bytes, float]:
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            body, status = r.read(), r.status
    except urllib.error.HTTPError as e:
        body, status = e.read(), e.code
    return status, body, time.perf_counter() - t0


def libraries(work: Path, index: Path, videos: int) -> tuple[int, int]:
    """Three old videos, indexed into `index`, and `videos` new ones of 10 s; (old sources, old frames)."""
    for i in range(3):
        segments_video(work / "old" / f"old{i}.mp4", [(4, "circle", COLOURS[i])])
    for i in range(videos):
        shape = ("triangle", "square")[i // len(COLOURS) % 2]  # no two alike: a byte copy is not a new source
        segments_video(work / "new" / f"new{i:02d}.mp4", [(10, shape, COLOURS[i % len(COLOURS)])])
    with Index(index, model=MODEL) as idx:
        idx.add([work / "old"])
        return len(idx.sources()), idx.stats().frames


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="2 new videos, 2 threads")
    opts = ap.parse_args()
    if opts.quick:
        opts.videos, opts.threads = 2, 2

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        index = work / "index"
        old_sources, old_frames = libraries(work, index, opts.videos)
        server = subprocess.Popen([sys.executable, "-m", "vidsearch.cli", "serve", "--index", str(index),
                                   "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            base = next(line.split()[1].rstrip("/") for line in server.stdout if line.startswith("Open http://"))
            idle = [get(base + SEARCH)[2] for _ in range(50)]

            errors: list[str] = []
            torn: list[str] = []
            during: list[float] = []
            seen: set[int] = set()
            requests = 0
            lock = threading.Lock()
            writer = subprocess.Popen([sys.executable, "-m", "vidsearch.cli", "index", str(work / "new"),
                                       "--index", str(index)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
            t0 = time.monotonic()

            def client() -> None:
                nonlocal requests
                while writer.poll() is None:
                    status, body, _ = get(base + "/api/info")
                    urls = []
                    if status == 200:
                        info = json.loads(body)
                        with lock:
                            seen.add(info["sources"])
                            if info["frames"] != old_frames + 10 * (info["sources"] - old_sources):
                                torn.append(f"{info['sources']} sources, {info['frames']} frames")
                    status2, body2, seconds = get(base + SEARCH)
                    if status2 == 200:
                        urls = [base + h["thumbnail_url"] for h in json.loads(body2)["hits"]]
                    results = [(status, "/api/info"), (status2, SEARCH)] + [(get(u)[0], u) for u in urls]
                    with lock:
                        during.append(seconds)
                        requests += len(results)
                        errors.extend(f"{s} {u}" for s, u in results if s != 200)

            threads = [threading.Thread(target=client) for _ in range(opts.threads)]
            for t in threads:
                t.start()
            writer.wait()
            run_seconds = time.monotonic() - t0
            for t in threads:
                t.join()
            after = json.loads(get(base + "/api/info")[1])
        finally:
            server.terminate()
            server.wait()

        def ms(xs: list[float]) -> str:
            return f"{np.percentile(xs, 50) * 1000:.0f} / {np.percentile(xs, 95) * 1000:.0f} ms"

        print(f"vidsearch index: {opts.videos} new videos in {run_seconds:.1f} s, exit {writer.returncode}")
        print(f"during the run: {requests} requests from {opts.threads} threads, {len(errors)} errors, "
              f"{len(torn)} half-written sources seen, source counts seen: {sorted(seen)}")
        print(f"search p50 / p95: idle {ms(idle)}, during the run {ms(during)}")
        complete = (after["sources"], after["frames"]) == (old_sources + opts.videos, old_frames + 10 * opts.videos)
        print(f"first request after the run: {after['sources']} sources, {after['frames']} frames "
              f"({'every new source' if complete else 'INCOMPLETE'}), no restart")
        for line in (errors + torn)[:10]:
            print("  ", line)
    sys.exit(1 if errors or torn or not complete or writer.returncode else 0)


if __name__ == "__main__":
    main()
