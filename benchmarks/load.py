"""Load test of `vidsearch serve` over loopback HTTP only (so it runs against any version of the server).

    python -m benchmarks.load [--threads 8] [--requests 100] [--storm 50,20] [--uploads 500] [--auth TOKEN]
                              [--work DIR] [--quick]

Builds a small library of generated videos (H.264 MP4s, and MPEG-4 part 2 AVIs, which browsers cannot play, so
that /play/ID needs a proxy) and photos, starts `vidsearch serve` on 127.0.0.1 (a free port) with the tiny test
model, and measures, each request sent with `Host: 127.0.0.1:PORT` and no Origin (as a browser on this machine):

1. burst    each of --threads client threads sends --requests mixed requests: text searches, image uploads,
            thumbnails, ranged media reads. Errors (goal 0), p50/p95 per kind.
2. idle     text searches one at a time, each a new text (no cached text vector): p50/p95.
3. storm    the same searches while other threads ask for 50 clips (/clip/ID?start=&end=, each span new, so each
            one is cut) and 20 proxies (/play/ID of an AVI); goal: search p95 within 3x of idle and under 1 s.
4. watch    the same searches against a second server, `serve FOLDER --watch`, while it indexes FOLDER's 40
            videos of 30 s.
5. uploads  500 image searches with hostile uploads (a 300 x 200,000 PNG, its transpose, a PNG header claiming
            60,000 x 60,000 with no pixels, a cut-off PNG, random bytes), then the server's RSS against before
            them; goal: growth under 100 MB, and every upload answered 4xx or 200, never 5xx.

A clip or proxy answered 202 (made in the background) counts as queued and 503 (busy, with Retry-After) as
refused: a server that sheds load is not in error. With --auth the server needs the token (VIDSEARCH_AUTH) and
every request sends it as a Bearer header. Exit status 1 when a request of the burst, the searches or the storm
failed (a 5xx other than 503, a refused connection, a timeout); the goals, the uploads' included, are printed
beside the figures, met or not. --quick: a tenth of everything (seconds; its figures mean nothing).
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import queue
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image

from benchmarks.common import ROOT, TINY, draw, encode, machine, p50_p95, segments_video, table

KINDS = ("text", "image", "thumb", "range")
COLOURS = ["red", "green", "blue", "yellow", "orange", "purple"]
SHAPES = ["circle", "square", "triangle"]
START_TIMEOUT = 300  # seconds for indexing the library and loading the model
REQUEST_TIMEOUT = 120
HEADERS: dict[str, str] = {}  # Host (and the token with --auth), sent with every request


# -- the library and the server --------------------------------------------------------------------------------

def build_library(folder: Path, videos: int = 3, avis: int = 2) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(videos):
        plan = [(2, shape, COLOURS[(i + j) % len(COLOURS)]) for j, shape in enumerate(SHAPES)]
        segments_video(folder / f"video{i}.mp4", plan)
    for i in range(avis):  # MPEG-4 part 2 in AVI: no browser plays it, so /play/ID needs an H.264 proxy
        frames = [draw(SHAPES[(i + j) % 3], COLOURS[(i + 3 + j) % 6]) for j in range(3) for _ in range(50)]
        encode(folder / f"old{i}.avi", frames, codec="mpeg4", extra=["-q:v", "5"])
    for i, (shape, colour) in enumerate([("circle", "red"), ("square", "blue"), ("triangle", "green")]):
        Image.fromarray(draw(shape, colour, (240, 180))).save(folder / f"photo{i}.png")


def start_server(index: Path, library: Path, auth: str | None, watch: bool = False) -> tuple[subprocess.Popen, int]:
    """`vidsearch serve` on port 0; the port is read from the line it prints once it listens."""
    proc = subprocess.Popen([sys.executable, "-m", "vidsearch.cli", "serve", str(library), "--index", str(index),
                             "--model", TINY, "--host", "127.0.0.1", "--port", "0", "--device", "cpu",
                             *(["--watch"] if watch else [])],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**os.environ, "VIDSEARCH_AUTH": auth or ""})
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:  # keeps the pipe drained for the whole run, so that the server never blocks on it
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            raise RuntimeError(f"server exited with {proc.wait()}")
        if line.startswith("Open http://127.0.0.1:"):
            return proc, int(line.split(":")[2].split("/")[0])
    proc.kill()
    raise RuntimeError("server did not start in time")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


# -- requests --------------------------------------------------------------------------------------------------

class Client:
    """One keep-alive connection; reconnects after a failure."""

    def __init__(self, port: int):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)

    def send(self, method: str, url: str, body: bytes | None = None, headers: dict | None = None
             ) -> tuple[int | str, bytes, float]:
        """(status, or the exception's name; body; seconds)."""
        t0 = time.perf_counter()
        try:
            self.conn.request(method, url, body=body, headers={**HEADERS, **(headers or {})})
            r = self.conn.getresponse()
            status, data = r.status, r.read()
        except (OSError, http.client.HTTPException) as e:
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            status, data = type(e).__name__, b""
        return status, data, time.perf_counter() - t0


def outcome(status: int | str, ok: tuple[int, ...] = (200, 206)) -> str:
    """ok, queued (202: made in the background), refused (503: busy), rejected (4xx) or error."""
    if status in ok:
        return "ok"
    return {202: "queued", 503: "refused"}.get(status, "rejected" if isinstance(status, int) and 400 <= status < 500
                                               else "error")


def multipart(filename: str, data: bytes, fields: dict[str, str] | None = None) -> tuple[bytes, dict]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in (fields or {}).items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
                 f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def png(rgb_or_grey: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb_or_grey).save(buf, "PNG")
    return buf.getvalue()


def hostile_uploads() -> dict[str, bytes]:
    """Uploads of shapes no photo has (each small on the wire)."""
    header_only = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 60_000, 60_000, 8, 2, 0, 0, 0))
    small = png(draw("circle", "red", (64, 64)))
    return {"300 x 200,000 PNG": png(np.zeros((200_000, 300), np.uint8)),
            "200,000 x 300 PNG": png(np.zeros((300, 200_000), np.uint8)),
            "PNG header of 60,000 x 60,000, no pixels": header_only + _chunk(b"IEND", b""),
            "PNG cut in half": small[: len(small) // 2],
            "random bytes": np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


# -- phases ----------------------------------------------------------------------------------------------------

def targets(port: int) -> dict:
    """Frame ids, videos (MP4 and AVI) and their durations, from the server's own search results."""
    c, hits = Client(port), []
    for q in ("a red circle", "a blue square", "a green triangle", "a yellow circle"):
        hits += json.loads(c.send("GET", "/api/search?per_video=0&min_score=-1&k=50&q=" + quote(q))[1])["hits"]
    videos = {h["source_id"]: h["source"] for h in hits if h["kind"] == "video"}
    return {"frames": sorted({h["frame_id"] for h in hits}),
            "mp4": sorted(i for i, p in videos.items() if p.endswith(".mp4")),
            "avi": sorted(i for i, p in videos.items() if p.endswith(".avi")),
            "pngs": [png(draw(s, c, (64, 64))) for s, c in [("circle", "red"), ("square", "blue")]]}


def burst_client(port: int, n: int, seed: int, t: dict, out: list) -> None:
    rng, c = np.random.default_rng(seed), Client(port)
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        if kind == "text":
            r = c.send("GET", "/api/search?q=" + quote(f"a {rng.choice(COLOURS)} circle"))
        elif kind == "image":
            body, headers = multipart("query.png", t["pngs"][i % len(t["pngs"])], {"k": "5"})
            r = c.send("POST", "/api/search", body, headers)
        elif kind == "thumb":
            r = c.send("GET", f"/thumb/{rng.choice(t['frames'])}")
        else:
            r = c.send("GET", f"/media/{rng.choice(t['mp4'])}", headers={"Range": "bytes=0-1023"})
        out.append((kind, r[2], outcome(r[0])))


def burst(port: int, threads: int, requests: int, t: dict) -> tuple[list, float]:
    results: list[tuple[str, float, str]] = []
    pool = [threading.Thread(target=burst_client, args=(port, requests, i, t, results)) for i in range(threads)]
    t0 = time.perf_counter()
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return results, time.perf_counter() - t0


def searches(port: int, label: str, until, least: int) -> list[float]:
    """Text searches one at a time, each a text not asked before, until `until()` is true (and `least` done)."""
    c, took, i = Client(port), [], 0
    while len(took) < least or not until():
        text = f"a {COLOURS[i % 6]} {SHAPES[i % 3]} {label} {i}"
        status, _, seconds = c.send("GET", "/api/search?q=" + quote(text))
        if status != 200:
            raise RuntimeError(f"a search during {label} answered {status}")
        took.append(seconds)
        i += 1
    return took


def storm(port: int, t: dict, clips: int, proxies: int) -> tuple[list[float], Counter]:
    """`clips` clip and `proxies` proxy requests from 4 threads, and searches until they are all answered."""
    jobs: queue.Queue = queue.Queue()
    for i in range(clips):
        start = (i % 40) * 0.1
        jobs.put(("clip", f"/clip/{t['mp4'][i % len(t['mp4'])]}?start={start:.1f}&end={start + 1 + i // 40:.1f}"))
    for i in range(proxies):
        jobs.put(("proxy", f"/play/{t['avi'][i % len(t['avi'])]}"))
    counts: Counter = Counter()
    lock = threading.Lock()

    def worker() -> None:
        c = Client(port)
        while True:
            try:
                kind, url = jobs.get_nowait()
            except queue.Empty:
                return
            status = c.send("GET", url)[0]
            with lock:
                counts[(kind, f"{outcome(status)} ({status})")] += 1

    pool = [threading.Thread(target=worker) for _ in range(4)]
    for th in pool:
        th.start()
    took = searches(port, "storm", lambda: not any(th.is_alive() for th in pool), 5)
    for th in pool:
        th.join()
    return took, counts


def during_watch(work: Path, auth: str | None, videos: int) -> tuple[list[float], int, float]:
    """A second server, `serve FOLDER --watch`, on a new index: searches while it indexes FOLDER's videos.
    (searches, sources indexed when the searches stopped, seconds)."""
    folder = work / "watched"
    for i in range(videos):
        segments_video(folder / f"w{i:02d}.mp4", [(15, SHAPES[i % 3], COLOURS[i % 6]),
                                                  (15, SHAPES[(i + 1) % 3], COLOURS[(i + i // 6) % 6])])
    proc, port = start_server(work / "index-watch", folder, auth, watch=True)
    HEADERS["Host"] = f"127.0.0.1:{port}"
    try:
        c, t0 = Client(port), time.monotonic()

        def indexed() -> int:
            status, body, _ = c.send("GET", "/api/status")
            return json.loads(body)["counts"]["sources"] if status == 200 else 0

        took = searches(port, "watch", lambda: indexed() >= videos or time.monotonic() - t0 > START_TIMEOUT, 5)
        return took, indexed(), time.monotonic() - t0
    finally:
        stop(proc)


RSS_STOP = 2048  # MiB of growth at which the uploads stop: the machine is shared, and the goal is long missed


def uploads(port: int, pid: int, n: int) -> tuple[float, float, Counter]:
    """RSS before and after n hostile uploads (MiB; fewer if RSS grows past RSS_STOP), and how they were answered."""
    shapes, c, counts = hostile_uploads(), Client(port), Counter()
    names = list(shapes)
    before = rss_mib(pid)
    for i in range(n):
        if rss_mib(pid) - before > RSS_STOP:
            print(f"uploads stopped after {i} of {n}: the server's RSS grew by more than {RSS_STOP} MiB")
            break
        name = names[i % len(names)]
        body, headers = multipart("upload.png", shapes[name])
        status = c.send("POST", "/api/search", body, headers)[0]
        counts[(name, f"{'ok' if status == 200 else outcome(status, ok=())} ({status})")] += 1
    return before, rss_mib(pid), counts


# -- output ----------------------------------------------------------------------------------------------------

def report_burst(results: list, wall: float, threads: int) -> int:
    errors = [r for r in results if r[2] != "ok"]
    print(f"\n{len(results)} requests from {threads} threads in {wall:.1f} s ({len(results) / wall:.0f}/s); "
          f"not ok: {len(errors)} {Counter(e[2] for e in errors) or ''}")
    rows = []
    for kind in (*KINDS, "all"):
        s = [sec for k, sec, _ in results if kind in (k, "all")]
        rows.append([kind, len(s), *(f"{x:.1f}" for x in p50_p95(s)), f"{1000 * max(s):.1f}"])
    table("1. Burst of mixed requests (ms)", ["kind", "n", "p50", "p95", "max"], rows)
    return len(errors)


def report_search(idle: list, storm_: list, watch: list, counts: Counter, watched: tuple[int, int, float]) -> None:
    i50, i95 = p50_p95(idle)
    rows = [["2. idle", len(idle), f"{i50:.1f}", f"{i95:.1f}", "-"]]
    for label, took in (("3. during the clip and proxy storm", storm_),
                        (f"4. while `serve --watch` indexes ({watched[1]} of {watched[0]} videos in "
                         f"{watched[2]:.0f} s)", watch)):
        p50, p95 = p50_p95(took)
        met = p95 <= 3 * i95 and p95 < 1000
        rows.append([label, len(took), f"{p50:.1f}", f"{p95:.1f}",
                     f"{p95 / i95:.1f}x idle: {'met' if met else 'NOT MET'}"])
    table("Text search, one at a time, each a new text (ms); goal: p95 within 3x of idle and under 1,000 ms",
          ["when", "searches", "p50", "p95", "goal"], rows)
    table("3. The storm's requests", ["request", "answer", "n"],
          [[k, o, n] for (k, o), n in sorted(counts.items())])


def report_uploads(before: float, after: float, counts: Counter) -> None:
    table("5. Hostile uploads (POST /api/search)", ["upload", "answer", "n"],
          [[k, o, n] for (k, o), n in sorted(counts.items())])
    growth = after - before
    failed = sum(n for (_, o), n in counts.items() if o.startswith("error"))
    print(f"server RSS: {before:.0f} MiB before the uploads, {after:.0f} MiB after: {growth:+.0f} MiB "
          f"(goal: under 100 MiB growth: {'met' if growth < 100 else 'NOT MET'}); uploads answered with an error: "
          f"{failed} (goal 0: {'met' if not failed else 'NOT MET'})")


# -- main ------------------------------------------------------------------------------------------------------

def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--requests", type=int, default=100, help="per thread, in the burst")
    ap.add_argument("--storm", default="50,20", help="clip and proxy requests of the storm")
    ap.add_argument("--uploads", type=int, default=500)
    ap.add_argument("--watch-videos", type=int, default=40, help="videos of 30 s a `serve --watch` indexes")
    ap.add_argument("--auth", default=None, help="run the server with this token")
    ap.add_argument("--work", type=Path, default=None, help="folder for the library and index (default: a temp)")
    ap.add_argument("--quick", action="store_true", help="a tenth of everything")
    args = ap.parse_args()
    if args.quick:
        args.threads, args.requests, args.storm, args.uploads, args.watch_videos = 2, 8, "5,2", 5, 2
    return args


def main() -> None:
    args = arguments()
    clips, proxies = (int(x) for x in args.storm.split(","))
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        build_library(work / "library")
        t0 = time.monotonic()
        proc, port = start_server(work / "index", work / "library", args.auth)
        HEADERS["Host"] = f"127.0.0.1:{port}"
        try:
            print(f"server pid {proc.pid} on 127.0.0.1:{port}, up in {time.monotonic() - t0:.1f} s"
                  + (" (with --auth)" if args.auth else ""))
            if args.auth:
                status = Client(port).send("GET", "/api/search?q=x")[0]
                assert status == 401, f"without the token: HTTP {status}"
                HEADERS["Authorization"] = f"Bearer {args.auth}"
            t = targets(port)
            results, wall = burst(port, args.threads, args.requests, t)
            idle = searches(port, "idle", lambda: True, 10 if args.quick else 50)
            during, counts = storm(port, t, clips, proxies)
            before, after, answered = uploads(port, proc.pid, args.uploads)
        finally:
            stop(proc)
        watch = during_watch(work, args.auth, args.watch_videos)
    failed = report_burst(results, wall, args.threads)
    report_search(idle, during, watch[0], counts, (args.watch_videos, watch[1], watch[2]))
    report_uploads(before, after, answered)
    failed += sum(n for (_, o), n in counts.items() if o.startswith("error"))
    print(f"requests failed: {failed}; server exit status {proc.returncode}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
