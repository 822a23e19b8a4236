"""Other encodings of one video shown once: which video pairs the index pairs, and what merging costs a search.

    python -m benchmarks.copies [--media DIR] [--seconds 20] [--work DIR] [--quick]

Makes videos (coloured shapes as benchmarks.common draws them, and FFmpeg's test patterns), or takes the videos in
`--media DIR` (their first `--seconds`), re-encodes each with the bundled ffmpeg to MPEG-2 in .mpg, MPEG-4 part 2 in
.avi and H.264 at half the size and a low rate in .mp4, indexes all of them with the tiny test model and with
ViT-B-32 with random weights, and prints for each how many pairs of encodings of one video the index paired (all
should be) and how many pairs of different videos (none should be): the decision is made from the pixels
(extract/pixels.py, whose threshold benchmarks.pixels measures), so it must not depend on the model; then the
latency of a search that merges them.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import FFMPEG, TINY, machine, random_vit_b32, segments_video, table
from vidsearch import Index

ENCODINGS = {  # suffix: ffmpeg output arguments
    "mpeg2.mpg": ["-c:v", "mpeg2video", "-q:v", "6", "-an"],
    "mpeg4.avi": ["-c:v", "mpeg4", "-q:v", "8", "-an"],
    "small.mp4": ["-vf", "scale=trunc(iw/4)*2:trunc(ih/4)*2", "-c:v", "libx264", "-preset", "veryfast", "-crf", "32",
                  "-pix_fmt", "yuv420p", "-an"],
}
SHAPES = [
    [(4, "circle", "red"), (4, "square", "blue"), (4, "triangle", "green"), (4, "circle", "yellow"),
     (4, "square", "purple")],
    [(4, "square", "blue"), (4, "circle", "red"), (4, "circle", "yellow"), (4, "triangle", "green"),
     (4, "triangle", "orange")],
]
PATTERNS = ["testsrc2=size=640x360:rate=25", "mandelbrot=size=640x360:rate=25", "life=size=640x360:rate=25:seed=7",
            "cellauto=size=640x360:rate=25:rule=110", "rgbtestsrc=size=640x360:rate=25"]


def ffmpeg(*args: str) -> None:
    if not Path(args[-1]).is_file():  # kept from an earlier run with the same --work
        subprocess.run([FFMPEG, "-y", "-loglevel", "error", *args], check=True)


def originals(work: Path, media: Path | None, seconds: float, quick: bool = False) -> list[Path]:
    out = work / "originals"
    out.mkdir(parents=True, exist_ok=True)
    if media is not None:
        videos = []
        for n, src in enumerate(sorted(p for p in media.iterdir() if p.suffix.lower() in (".mp4", ".avi", ".mkv",
                                                                                             ".mov", ".webm"))):
            dst = out / f"{n}_{src.stem}{src.suffix}"
            ffmpeg("-i", str(src), "-t", str(seconds), "-c", "copy", "-an", str(dst))  # the original's own encoding
            videos.append(dst)
        return videos
    videos = [out / f"shapes{n}_{seconds:g}s.mp4" for n in range(2 if quick else 4)]
    for path, plan, bg in zip(videos, SHAPES * 2, ["white", "white", "black", "grey"]):
        if not path.is_file():
            segments_video(path, [(s * seconds / 20, *rest) for s, *rest in plan], background=bg)
    for n, pattern in enumerate(PATTERNS[:1] if quick else PATTERNS):
        dst = out / f"pattern{n}_{seconds:g}s.mp4"
        ffmpeg("-f", "lavfi", "-i", pattern, "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast",
               "-pix_fmt", "yuv420p", str(dst))
        videos.append(dst)
    return videos


def encodings(work: Path, videos: list[Path]) -> list[list[Path]]:
    """For each video: itself, then its re-encodings."""
    out = work / "encodings"
    out.mkdir(exist_ok=True)
    groups = []
    for v in videos:
        copies = [out / f"{v.stem}.{suffix}" for suffix in ENCODINGS]
        for dst, args in zip(copies, ENCODINGS.values()):
            ffmpeg("-i", str(v), *args, str(dst))
        groups.append([v, *copies])
    return groups


def paired(idx: Index, groups: list[list[Path]]) -> None:
    """What the index decided from the pixels (catalog.encodings): every pair of encodings of one video should be
    paired, no pair of different videos."""
    by_path = {s.path: s.id for s in idx.sources()}
    ids = [[by_path[str(p.resolve())] for p in group] for group in groups]
    pairs = idx._opened.catalog.encodings({i for group in ids for i in group})
    same = [(a, b) for group in ids for n, a in enumerate(group) for b in group[n + 1:]]
    other = [(a, b) for g, group in enumerate(ids) for a in group for rest in ids[g + 1:] for b in rest]
    rows = [[name, len(ps), sum(b in pairs.get(a, ()) for a, b in ps)]
            for name, ps in (("encodings of one video", same), ("different videos", other))]
    table("Video pairs the index found to be one content (from pixels, at indexing)", ["pairs", "n", "paired"], rows)


def latency(idx: Index, queries=("a red circle", "a blue square", "a green triangle"), rounds: int = 10) -> None:
    """Index.search with merging, on this index where every video has three other encodings of its length."""
    idx.search(queries[0])  # the model loads
    took = []
    for _ in range(rounds):
        for q in queries:
            t0 = time.perf_counter()
            idx.search(q, min_score=-1)
            took.append(time.perf_counter() - t0)
    print(f"search, k = 10: p50 {np.median(took) * 1000:.1f} ms, p90 {np.percentile(took, 90) * 1000:.1f} ms "
          f"({len(took)} searches)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--media", type=Path, help="a folder of videos to use instead of generated ones")
    ap.add_argument("--seconds", type=float, default=20.0, help="length of the generated videos, or how much of each")
    ap.add_argument("--work", type=Path, help="where to keep media and indexes (default: a temporary folder)")
    ap.add_argument("--quick", action="store_true", help="3 generated videos of 4 s, the test model only")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        seconds = 4.0 if args.quick else args.seconds
        groups = encodings(work, originals(work, args.media, seconds, args.quick))
        print(f"{len(groups)} videos x {1 + len(ENCODINGS)} encodings ({', '.join(ENCODINGS)}); {machine()}")
        models = [("tiny test model", TINY)]
        if not args.quick:
            models.append(("ViT-B-32, random weights", random_vit_b32(work / "vitb32")))
        for name, model in models:
            with Index(work / f"index-{name.split()[0]}", model=model) as idx:
                idx.add([str(p) for group in groups for p in group])
                paired(idx, groups)
                latency(idx)


if __name__ == "__main__":
    main()
