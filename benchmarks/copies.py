"""How alike are one video's frames in two encodings, against frames of other videos? Chooses search.COPY_COSINE.

    python -m benchmarks.copies [--media DIR] [--seconds 20] [--work DIR] [--quick]

Makes videos (coloured shapes as benchmarks.common draws them, and FFmpeg's test patterns), or takes the videos in
`--media DIR` (their first `--seconds`), re-encodes each with the bundled ffmpeg to MPEG-2 in .mpg, MPEG-4 part 2 in
.avi and H.264 at half the size and a low rate in .mp4, indexes all of them with the tiny test model and with
ViT-B-32 with random weights, and prints for each model the cosine between the stored vectors of
- same time, other encoding: a frame and the frame at the same time in another encoding of the same video;
- same time, other video: a frame and the frame at the same time of another video (any encoding): what the
  threshold must refuse, as two videos of one length whose moments coincide are compared just so;
- nearest frame, other video: a frame and its nearest frame of any other video (any encoding), at any time;
- nearest frame, same video, other moment: a frame and its nearest frame of the same video (any encoding), more than
  COINCIDE intervals away;
and, per pair of videos, whether it would merge at each threshold (search.encodings_alike). A threshold above what
different videos reach and under what encodings keep tells them apart; the time check (search.COINCIDE) is what
tells other moments of one video apart.
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
from vidsearch.search import ALIKE_SHARE, COINCIDE, COPY_COSINE, aligned_cosines

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


def cosines(idx: Index, groups: list[list[Path]]) -> tuple[dict[str, np.ndarray], dict[str, list[np.ndarray]]]:
    """Frame pairs (cosines by kind), and video pairs (the time-aligned cosines of each pair, by kind)."""
    by_path = {s.path: s.id for s in idx.sources()}
    frames = [[idx.frames(by_path[str(p.resolve())])[1:] for p in group] for group in groups]
    pairs: dict[str, list[np.ndarray]] = {"encodings of one video": [], "different videos": []}
    other_video, other_moment = [], []
    for g, versions in enumerate(frames):
        for n, a in enumerate(versions):
            pairs["encodings of one video"] += [aligned_cosines(a, b, idx.interval) for b in versions[n + 1:]]
            pairs["different videos"] += [aligned_cosines(a, b, idx.interval) for vs in frames[g + 1:] for b in vs]
        rest = np.concatenate([v for h, vs in enumerate(frames) if h != g for _, v in vs])
        mine_t = np.concatenate([t for t, _ in versions])
        mine_v = np.concatenate([v for _, v in versions])
        other_video += list((mine_v @ rest.T).max(axis=1))
        sims = mine_v @ mine_v.T
        far = np.abs(mine_t[:, None] - mine_t[None, :]) > COINCIDE * idx.interval
        other_moment += [float(sims[i][far[i]].max()) for i in range(len(mine_t)) if far[i].any()]
    return {"same time, other encoding": np.concatenate(pairs["encodings of one video"]),
            "same time, other video": np.concatenate(pairs["different videos"]),
            "nearest frame, other video": np.array(other_video),
            "nearest frame, same video, other moment": np.array(other_moment)}, pairs


def report(model_name: str, sims: dict[str, np.ndarray], pairs: dict[str, list[np.ndarray]]) -> None:
    rows = [[name, len(a), f"{a.min():.4f}", f"{np.percentile(a, 1):.4f}", f"{np.median(a):.4f}",
             f"{np.percentile(a, 99):.4f}", f"{a.max():.4f}"] for name, a in sims.items()]
    table(f"{model_name}: cosine of stored frame vectors", ["frames", "n", "min", "p1", "median", "p99", "max"], rows)
    same, other = sims["same time, other encoding"], sims["same time, other video"]
    enc, diff = pairs["encodings of one video"], pairs["different videos"]

    def merged(videos: list[np.ndarray], x: float) -> float:  # as search.encodings_alike decides, at threshold x
        return float(np.mean([np.mean(c >= x) >= ALIKE_SHARE for c in videos]))

    table(f"{model_name}: at each threshold (search.COPY_COSINE = {COPY_COSINE}; a video pair merges when "
          f"{ALIKE_SHARE:.0%} of its time-aligned frames reach it)",
          ["threshold", "same-time frames of encodings under it", "of other videos over it",
           f"encoding pairs not merged (of {len(enc)})", f"different-video pairs merged (of {len(diff)})"],
          [[f"{x:.2f}", f"{(same < x).mean():.2%}", f"{(other >= x).mean():.2%}", f"{1 - merged(enc, x):.2%}",
            f"{merged(diff, x):.2%}"] for x in sorted({0.9, 0.93, 0.95, 0.96, 0.97, 0.98, 0.99, COPY_COSINE})])


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
                report(name, *cosines(idx, groups))
                latency(idx)


if __name__ == "__main__":
    main()
