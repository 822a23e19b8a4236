"""A decoder that hangs for real, inside FFmpeg, under `vidsearch index` (the Python API, in this process).

    python -m benchmarks.stall [--timeout 5] [--runs 2] [--quick]

Generates 8 videos of 10 s and indexes them into fresh indexes: once cleanly, then `--runs` times with each of two
real native hangs standing in for the fourth video: PyAV stuck in av.open() on a FIFO nobody writes ("open"), and
PyAV stuck reading a FIFO that was fed the first half of an MPEG-TS and then goes silent ("read"). Each run must
skip that video as stalled and index the other 7; the stuck threads are left behind, so each run's process must
also exit (every run is a fresh process). Prints each run and the failures (goal 0). --quick: one run of each
hang (no clean run), a 2 s timeout.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import FFMPEG, ROOT, segments_video
from benchmarks.common import TINY as MODEL

STUCK = "v3.mp4"


class FifoVideo:
    """A video read from a FIFO with PyAV, shaped like what open_media returns (info, frames, close): a frame at
    each mark, until the FIFO goes silent and PyAV blocks in its read, inside FFmpeg. (vidsearch's own open_media
    refuses a FIFO before reading it: its size is 0.)"""

    def __init__(self, fifo: Path):
        import av

        from vidsearch.extract import MediaInfo

        self._container = av.open(str(fifo))  # probes the part already fed
        stream = self._container.streams.video[0]
        self.info = MediaInfo("video", stream.codec_context.width, stream.codec_context.height,
                              float(stream.average_rate or 0))

    def frames(self, interval: float, side: int):
        from vidsearch.extract import Frame

        mark = 0.0
        for fr in self._container.decode(video=0):  # blocks natively once the FIFO is drained
            if fr.time is not None and fr.time >= mark:
                scale = min(1.0, side / min(fr.width, fr.height))
                rgb = fr.to_ndarray(format="rgb24", width=max(1, round(fr.width * scale)),
                                    height=max(1, round(fr.height * scale)))
                yield Frame(float(fr.time), rgb)
                mark = float(fr.time) + interval

    def close(self) -> None:
        self._container.close()


def one_run(work: Path, mode: str, timeout: float) -> None:
    """In a child process: index the library with STUCK replaced by a hang of this mode; print the outcome."""
    import av

    import vidsearch
    from vidsearch.ingest import local

    never, feed = work / "never.fifo", work / "feed.fifo"
    ts = (work / "v0.ts").read_bytes()

    def writer() -> None:
        with open(feed, "wb") as f:
            f.write(ts[: len(ts) // 2])
            f.flush()
            time.sleep(3600)  # keeps the pipe open, and silent

    real = local.open_media

    def open_media(path: str):
        if os.path.basename(path) == STUCK and mode == "open":
            av.open(str(never))  # blocks in open(2) inside FFmpeg
        if os.path.basename(path) == STUCK and mode == "read":
            threading.Thread(target=writer, daemon=True).start()
            return FifoVideo(feed)
        return real(path)
    local.open_media = open_media  # the decode threads look it up in their module at each call
    t0 = time.monotonic()
    idx = vidsearch.Index(work / f"index-{mode}-{time.time_ns()}", model=MODEL, decode_timeout=timeout)
    report = idx.add([work / "lib"])
    skipped = [(os.path.basename(p), r) for p, r in report.skipped]
    print(f"{len(report.added)} {report.frames_added} {time.monotonic() - t0:.1f} {skipped!r}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timeout", type=float, default=5.0, help="the run's decode timeout, seconds")
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--child", nargs=2, metavar=("WORK", "MODE"), help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="one run of each hang, a 2 s timeout")
    opts = ap.parse_args()
    if opts.quick:
        opts.runs, opts.timeout = 1, 2.0
    if opts.child:
        one_run(Path(opts.child[0]), opts.child[1], opts.timeout)
        return
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        colours = ["red", "green", "blue", "yellow"]
        for i in range(8):
            segments_video(work / "lib" / f"v{i}.mp4", [(10, "circle" if i < 4 else "square", colours[i % 4])])
        subprocess.run([FFMPEG, "-loglevel", "error", "-i", str(work / "lib" / "v0.mp4"), "-c", "copy", "-f", "mpegts",
                        str(work / "v0.ts")], check=True)
        os.mkfifo(work / "never.fifo")
        os.mkfifo(work / "feed.fifo")
        for mode in ([] if opts.quick else ["clean"]) + ["open", "read"] * opts.runs:
            t0 = time.monotonic()
            try:
                proc = subprocess.run([sys.executable, "-m", "benchmarks.stall", "--timeout", str(opts.timeout),
                                       "--child", str(work), mode], capture_output=True, text=True, timeout=300,
                                      cwd=ROOT)

            except subprocess.TimeoutExpired:
                failures += 1
                print(f"{mode}: did not end in 300 s")
                continue
            wall = time.monotonic() - t0
            try:
                added, frames_added, seconds, skipped = proc.stdout.strip().split(" ", 3)
            except ValueError:
                failures += 1
                print(f"{mode}: exit {proc.returncode}: {proc.stderr[-300:]!r}")
                continue
            want = (8, 80, "[]") if mode == "clean" else (
                7, 70, repr([(STUCK, f"decoding stalled for {opts.timeout:g} s (no frame came)")]))
            ok = proc.returncode == 0 and (int(added), int(frames_added), skipped) == want
            failures += not ok
            print(f"{mode:5}: {added} videos indexed ({frames_added} frames), skipped {skipped}, run {seconds} s, "
                  f"process exit {proc.returncode} after {wall:.1f} s: {'ok' if ok else 'FAILED'}", flush=True)
    print(f"failures: {failures}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
