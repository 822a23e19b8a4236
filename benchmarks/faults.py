"""Crash safety of `vidsearch index`: SIGKILL at random moments, then check the index and a re-run.

    python -m benchmarks.faults [--trials 20] [--seed 0] [--work DIR] [--quick]

Indexes a generated folder once cleanly to learn its catalog (the set of (path, t)) and how long a run takes.
Each trial then starts `vidsearch index` into a fresh index, kills its process group with SIGKILL after a random
(seeded) delay within that time, checks that the index opens with only frames a clean run has, re-runs the same
command to the end and compares the catalog with the clean run's. Prints the trials and the failures (goal 0).
--quick: 1 trial over a library of 2 videos and a photo.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import TINY as MODEL
from benchmarks.common import draw, segments_video
from vidsearch.index import Index

RUN_TIMEOUT = 300


def build_library(folder: Path, videos: int = 6, photos: int = 4) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    colours = ["red", "green", "blue", "yellow", "orange", "purple"]
    for i in range(videos):
        segments_video(folder / f"video{i}.mp4", [(3, s, colours[(i + j) % 6])
                                                  for j, s in enumerate(["circle", "square", "triangle"])])
    for i, shape in enumerate(["circle", "square", "triangle", "circle"][:photos]):
        Image.fromarray(draw(shape, colours[i], (200, 150))).save(folder / f"photo{i}.png")


def command(library: Path, index: Path) -> list[str]:
    return [sys.executable, "-m", "vidsearch.cli", "index", str(library), "--index", str(index), "--model", MODEL,
            "--device", "cpu", "--batch-size", "4", "--interval", "0.1"]


def run(library: Path, index: Path) -> tuple[float, float]:
    """Runs to the end; returns (seconds until frames began to be written, seconds in all)."""
    t0 = time.monotonic()
    proc = subprocess.Popen(command(library, index), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    created = None
    while proc.poll() is None and time.monotonic() - t0 < RUN_TIMEOUT:
        if created is None and (index / "thumbs").exists():
            created = time.monotonic() - t0
        time.sleep(0.01)
    if proc.poll() is None:
        proc.kill()
    if proc.wait() != 0:
        raise RuntimeError(f"vidsearch index exited with {proc.returncode}: {proc.stderr.read()[-500:]!r}")
    total = time.monotonic() - t0
    return (total if created is None else created), total


def catalog(index: Path) -> set[tuple[str, float]]:
    """Opens the index (raising if it cannot) and returns its frames; an index never created is empty."""
    idx = Index(index)
    try:
        if not idx.exists:
            return set()
        out = set()
        for s in idx.sources():
            _, times, _ = idx.frames(s.id)
            out |= {(s.path, round(float(t), 3)) for t in times}
        assert idx.counts()["frames"] == len(out), "frame count disagrees with the frames listed"
        return out
    finally:
        idx.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--quick", action="store_true", help="1 trial, a library of 2 videos and a photo")
    opts = ap.parse_args()
    if opts.quick:
        opts.trials = 1
    rng = np.random.default_rng(opts.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = opts.work or Path(tmp)
        library = work / "library"
        build_library(library, *((2, 1) if opts.quick else (6, 4)))

        created, clean_time = run(library, work / "clean")
        expected = catalog(work / "clean")
        print(f"clean run: {clean_time:.1f} s ({created:.1f} s before frames are written), "
              f"{len(expected)} frames")
        failures = killed_runs = partial_runs = 0
        for trial in range(opts.trials):
            index = work / f"trial{trial}"
            # Most kills land while frames are written, a few while the index is created and the model loaded.
            delay = float(rng.uniform(max(0.0, created - 0.5), max(created, clean_time - 0.5)))
            proc = subprocess.Popen(command(library, index), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
            try:
                proc.wait(delay)
                killed = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)  # the whole group: any decoder it started dies with it
                proc.wait()
                killed = True
            problem = None
            try:
                partial = catalog(index)
                if not partial <= expected:
                    raise AssertionError(f"{len(partial - expected)} frames after the kill that a clean run lacks")
                run(library, index)
                got = catalog(index)
                if got != expected:
                    problem = f"catalog differs: {len(got - expected)} extra, {len(expected - got)} missing"
            except Exception as e:  # noqa: BLE001 - any way a trial can fail is a finding
                problem = f"{type(e).__name__}: {e}"
                partial = None
            failures += problem is not None
            killed_runs += killed
            partial_runs += killed and partial is not None and 0 < len(partial) < len(expected)
            state = f"killed at {delay:.2f} s" if killed else f"finished before {delay:.2f} s"
            frames = "?" if partial is None else len(partial)
            print(f"trial {trial:2d}: {state}, {frames} frames after the kill: {problem or 'ok'}", flush=True)
        print(f"trials: {opts.trials}, killed before the end: {killed_runs} ({partial_runs} with part of the "
              f"catalog written), failures: {failures}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
