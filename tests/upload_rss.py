"""By hand, not a test: the memory of `vidsearch serve` before and after many uploads of hostile shapes.

    python tests/upload_rss.py --index DIR [--uploads 500] [--threads 4]

Starts `vidsearch serve --index DIR` on a free port, searches once with a small image (the image tower loaded), then
posts --uploads images cycling through long, narrow and huge shapes from --threads threads, and prints the server's
resident memory (RSS) before and after, its peak, and the answers' statuses. Prints figures; asserts nothing."""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image


def png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 90, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


# (name, width, height): refused by shape, and the largest that are taken (20:1, the most a search keeps).
SHAPES = [("300x200000", 300, 200_000), ("1x100000", 1, 100_000), ("100000x1", 100_000, 1),
          ("600x12000", 600, 12_000), ("1000x20000", 1000, 20_000)]


def post(base: str, data: bytes) -> int:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"u.png\"\r\n"
            f"Content-Type: image/png\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(f"{base}/api/search", body, method="POST",
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    try:
        with urllib.request.urlopen(req, timeout=300) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def memory(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {k: fields[k].strip() for k in ("VmRSS", "VmHWM")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", required=True)
    ap.add_argument("--uploads", type=int, default=500)
    ap.add_argument("--threads", type=int, default=4)
    args = ap.parse_args()
    bodies = [(name, png(w, h)) for name, w, h in SHAPES]
    proc = subprocess.Popen([sys.executable, "-m", "vidsearch.cli", "serve", "--index", args.index, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        base = next(line.split()[1].rstrip("/") for line in proc.stdout if line.startswith("Open http://"))
        print("first search:", post(base, png(640, 480)), "before:", memory(proc.pid))
        jobs = [bodies[i % len(bodies)] for i in range(args.uploads)]
        with ThreadPoolExecutor(args.threads) as pool:
            statuses = Counter(pool.map(lambda job: (job[0], post(base, job[1])), jobs))
        print(f"after {args.uploads} uploads:", memory(proc.pid))
        for (name, status), n in sorted(statuses.items()):
            print(f"  {name} ({len(dict(bodies)[name]) // 1024} KB): {n} × {status}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
