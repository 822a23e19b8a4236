"""How far apart are the pixel signatures (extract.pixels) of one video's samples in two encodings, against those of
two recordings of one fixed camera? Chooses pixels.SAME_CELL and SAME_SHARE.

    python -m benchmarks.pixels [--quick] [--media DIR] [--split VIDEO] [--seconds 20] [--work DIR] [--side 128]

Takes the generated videos of benchmarks.copies (or the videos in `--media DIR`, their first `--seconds`) and
their re-encodings (MPEG-2 .mpg, MPEG-4 part 2 .avi, half-size H.264 CRF 32), and with `--split VIDEO` that
video's first and second halves, each re-encoded: two recordings of one camera, which must not merge. Samples every
second at `--side` (the tiny test model's decode side by default), and prints per pair of videos of one duration
the share of aligned samples within each candidate SAME_CELL, and the cell differences' quantiles.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.copies import ENCODINGS, encodings, ffmpeg, originals
from vidsearch.extract import open_media
from vidsearch.extract.pixels import SAME_CELL, aligned, cell_differences, pixel_signature

CELLS = [8, 12, 16, 24, 32, 48]


def signatures(path: Path, side: int) -> tuple[np.ndarray, np.ndarray]:
    media = open_media(str(path))
    try:
        got = [(fr.t, np.frombuffer(pixel_signature(fr.rgb), np.uint8)) for fr in media.frames(1.0, side)]
    finally:
        media.close()
    return np.array([t for t, _ in got]), np.stack([s for _, s in got])


def halves(work: Path, video: Path) -> list[Path]:
    out = work / "halves"
    out.mkdir(parents=True, exist_ok=True)
    media = open_media(str(video))
    list(media.frames(10.0, 64))
    half = media.info.duration / 2
    media.close()
    first, second = out / f"{video.stem}.first.mp4", out / f"{video.stem}.second.mp4"
    ffmpeg("-i", str(video), "-t", f"{half:.2f}", "-c:v", "libx264", "-crf", "23", "-an", str(first))
    ffmpeg("-ss", f"{half:.2f}", "-i", str(video), "-t", f"{half:.2f}", "-c:v", "libx264", "-crf", "23", "-an",
           str(second))
    return [first, second]


def row(name: str, a, b) -> None:
    i, j = aligned(a[0], b[0], 1.0)
    d = cell_differences(a[1][i], b[1][j])
    n = max(len(a[0]), len(b[0]))
    shares = " ".join(f"{(d <= c).sum() / n:5.2f}" for c in CELLS)
    q = np.quantile(d, [0.1, 0.5, 0.9, 1.0]) if len(d) else [np.nan] * 4
    print(f"{name:58s} {shares}   {' '.join(f'{x:6.1f}' for x in q)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", type=Path)
    ap.add_argument("--split", type=Path, action="append", default=[])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--side", type=int, default=128)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--quick", action="store_true", help="3 generated videos of 4 s")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="vidsearch-pixels-"))
    groups = encodings(work, originals(work, args.media, 4.0 if args.quick else args.seconds, args.quick))
    print(f"share of samples within SAME_CELL (now {SAME_CELL:g}) = {CELLS}; cell difference quantiles 10/50/90/max")
    sigs = {p: signatures(p, args.side) for g in groups for p in g}
    for g in groups:
        for p in g[1:]:
            row(f"same: {g[0].name} ~ {p.name}", sigs[g[0]], sigs[p])
    for n, g in enumerate(groups):
        for h in groups[n + 1:]:
            row(f"other: {g[0].name} ~ {h[0].name}", sigs[g[0]], sigs[h[0]])
    for video in args.split:
        first, second = halves(work, video)
        a, b = signatures(first, args.side), signatures(second, args.side)
        row(f"halves: {first.name} ~ {second.name}", a, b)
        for suffix, enc in ENCODINGS.items():
            dst = first.with_suffix(f".{suffix}")
            ffmpeg("-i", str(first), *enc, str(dst))
            row(f"same: {first.name} ~ {dst.name}", a, signatures(dst, args.side))


if __name__ == "__main__":
    main()
