"""Load test of `vidsearch serve`: a bounded burst of mixed requests from several client threads, over loopback.

    python benchmarks/load.py [--threads 8] [--requests 100] [--auth TOKEN] [--work DIR]

Builds a small library of generated videos and photos, starts `vidsearch serve` on 127.0.0.1 (a free port) with
the tiny test model, waits for it to answer, then each thread sends its requests in turn: text searches, image
uploads, thumbnails and ranged media reads. Prints errors (goal 0), p50/p95 latency per kind and overall, and
the server's RSS before and after the burst. With --auth, the server needs the token (given as VIDSEARCH_AUTH)
and every request sends it as a Bearer header. Stops the server at the end.
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from media import draw, segments_video  # noqa: E402

MODEL = "local-dir:" + str(ROOT / "tests" / "tiny_clip" / "model")
KINDS = ("text", "image", "thumb", "range")
START_TIMEOUT = 300  # seconds for indexing the library and loading the model
REQUEST_TIMEOUT = 60


def build_library(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    colours = ["red", "green", "blue", "yellow", "orange", "purple"]
    for i in range(3):
        plan = [(2, shape, colours[(i + j) % len(colours)]) for j, shape in enumerate(["circle", "square", "triangle"])]
        segments_video(folder / f"video{i}.mp4", plan)
    for i, (shape, colour) in enumerate([("circle", "red"), ("square", "blue"), ("triangle", "green")]):
        Image.fromarray(draw(shape, colour, (240, 180))).save(folder / f"photo{i}.png")


def png(shape: str, colour: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(draw(shape, colour, (64, 64))).save(buf, "PNG")
    return buf.getvalue()


def multipart(fields: dict[str, str], filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{filename}"\r\n'
                 f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def start_server(index: Path, library: Path, auth: str | None) -> tuple[subprocess.Popen, int]:
    """`vidsearch serve` on port 0; the port is read from the line it prints once it listens."""
    proc = subprocess.Popen([sys.executable, "-m", "vidsearch.cli", "serve", str(library), "--index", str(index),
                             "--model", MODEL, "--host", "127.0.0.1", "--port", "0", "--device", "cpu"],
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


AUTH_HEADERS: dict[str, str] = {}


def get(conn: http.client.HTTPConnection, method: str, url: str, body: bytes | None = None,
        headers: dict | None = None) -> tuple[int, bytes]:
    conn.request(method, url, body=body, headers={**AUTH_HEADERS, **(headers or {})})
    r = conn.getresponse()
    return r.status, r.read()


def client(port: int, n: int, seed: int, targets: dict, out: list) -> None:
    rng = np.random.default_rng(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        if kind == "text":
            args = ("GET", "/api/search?q=" + quote(f"a {rng.choice(targets['colours'])} circle"))
            ok = (200,)
        elif kind == "image":
            body, ctype = multipart({"k": "5"}, "query.png", targets["pngs"][i % len(targets["pngs"])])
            args = ("POST", "/api/search", body, {"Content-Type": ctype})
            ok = (200,)
        elif kind == "thumb":
            args = ("GET", f"/thumb/{rng.choice(targets['frames'])}")
            ok = (200,)
        else:
            args = ("GET", f"/media/{rng.choice(targets['sources'])}", None, {"Range": "bytes=0-1023"})
            ok = (206,)
        t0 = time.perf_counter()
        try:
            status, _ = get(conn, *args)
            error = None if status in ok else f"HTTP {status}"
        except (OSError, http.client.HTTPException) as e:
            error = repr(e)
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
        out.append((kind, time.perf_counter() - t0, error))
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--requests", type=int, default=100, help="per thread")
    ap.add_argument("--auth", default=None, help="run the server with this token")
    ap.add_argument("--work", type=Path, default=None, help="folder for the library and index (default: a temp)")
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = opts.work or Path(tmp)
        build_library(work / "library")
        t0 = time.monotonic()
        proc, port = start_server(work / "index", work / "library", opts.auth)
        try:
            print(f"server pid {proc.pid} on 127.0.0.1:{port}, up in {time.monotonic() - t0:.1f} s"
                  + (" (with --auth)" if opts.auth else ""))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT)
            if opts.auth:
                status = get(conn, "GET", "/api/search?q=x")[0]
                assert status == 401, f"without the token: HTTP {status}"
                AUTH_HEADERS["Authorization"] = f"Bearer {opts.auth}"
            hits = []
            for q in ("a red circle", "a blue square", "a green triangle", "a yellow circle"):
                hits += json.loads(get(conn, "GET", "/api/search?per_video=0&k=50&q=" + quote(q))[1])["hits"]
            conn.close()
            targets = {"colours": ["red", "green", "blue", "yellow", "orange", "purple"],
                       "frames": sorted({h["frame_id"] for h in hits}),
                       "sources": sorted({h["source_id"] for h in hits if h["kind"] == "video"}),
                       "pngs": [png(s, c) for s, c in [("circle", "red"), ("square", "blue"), ("triangle", "green")]]}
            rss_before = rss_kib(proc.pid)
            results: list[tuple[str, float, str | None]] = []
            threads = [threading.Thread(target=client, args=(port, opts.requests, i, targets, results))
                       for i in range(opts.threads)]
            t1 = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - t1
            rss_after = rss_kib(proc.pid)
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    errors = [(k, e) for k, _, e in results if e]
    print(f"{len(results)} requests from {opts.threads} threads in {wall:.1f} s ({len(results) / wall:.0f}/s); "
          f"{len(targets['frames'])} thumbnails, {len(targets['sources'])} videos")
    print(f"errors: {len(errors)}" + (f" (first: {errors[:3]})" if errors else ""))
    print(f"{'kind':<8}{'n':>6}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for kind in (*KINDS, "all"):
        ms = np.array([s for k, s, _ in results if kind in (k, "all")]) * 1000
        print(f"{kind:<8}{len(ms):>6}{np.percentile(ms, 50):>10.1f}{np.percentile(ms, 95):>10.1f}{ms.max():>10.1f}")
    print(f"server RSS: {rss_before / 1024:.0f} MiB before, {rss_after / 1024:.0f} MiB after")
    print(f"server exit status: {proc.returncode}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
