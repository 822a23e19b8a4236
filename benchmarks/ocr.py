"""What reading the text in frames (`vidsearch index --ocr`) costs.

    python -m benchmarks.ocr [--parts frame,footage,index] [--work DIR] [--repeats N] [--quick]

frame     seconds (wall and CPU) RapidOCR takes for one frame, as vidsearch runs it (vidsearch.ocr.Reader: one
          ONNX Runtime thread, no orientation pass), at 1280x720, 854x480 and 640x360, for a slide full of text and
          for a picture with little (FFmpeg's testsrc2), median of --repeats reads; then the same with
          RapidOCR's default detection size (every frame enlarged to 736 px on its short side)
footage   per kind of footage (benchmarks.common's 60 s generated 720p clips: slides, dark slides, screencast,
          fixed camera, always-changing video, and a lecture with a webcam corner, footage the change gate's
          thresholds were not chosen on), sampled every second as vidsearch does: how many samples the change
          gate sends to OCR, the OCR seconds that costs (measured), the OCR seconds reading every sample would cost
          (the measured mean per frame of that footage times its samples), and both as minutes of one CPU core per
          hour of footage
index     `vidsearch index` of the slides and the changing clip with the test model, with and without --ocr, in
          the same run: wall seconds and what --ocr adds (the tiny model keeps the embedding cost out of the way)

--quick: every part on 2 s of the lecture footage, one read of a 640x360 slide each way.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import TINY, deck, footage, machine, make_video, samples, table, untuned_footage
from vidsearch.extract.change import ChangeGate
from vidsearch.ocr import OCR_SIDE, Reader


def timed(read, rgb: np.ndarray) -> tuple[float, float, int]:
    """(wall s, CPU s, lines found) of one read."""
    w0, c0 = time.perf_counter(), time.process_time()
    words = read(rgb)
    return time.perf_counter() - w0, time.process_time() - c0, len(words)


def part_frame(work: Path, reader: Reader, repeats: int, quick: bool = False) -> None:
    slide = deck()[4][1]  # a slide with a title and four bullets, 1280x720
    pictures = [("slide", slide)]
    if not quick:
        pictures.append(("testsrc2", samples(make_video(work / "changing_60s.mp4", 60), 720)[1][5]))
    sizes = [(640, 360)] if quick else [(1280, 720), (854, 480), (640, 360)]
    rows = []
    for how, read in [("vidsearch", reader.read), ("RapidOCR default detection", default_reader())]:
        for name, picture in pictures:
            for w, h in sizes:
                rgb = cv2.resize(np.ascontiguousarray(picture), (w, h), interpolation=cv2.INTER_AREA)
                read(rgb)  # warm up
                runs = [timed(read, rgb) for _ in range(repeats)]
                rows.append([how, name, f"{w}x{h}", f"{statistics.median(r[0] for r in runs):.2f}",
                             f"{statistics.median(r[1] for r in runs):.2f}", runs[0][2]])
    table(f"OCR of one frame (median of {repeats}); {machine()}",
          ["detection", "picture", "size", "wall s", "CPU s", "lines"], rows)


def default_reader():
    """RapidOCR as vidsearch runs it (one thread, no orientation pass) but with its default detection size, which
    enlarges every frame to 736 pixels on its short side: what vidsearch's smaller detection size saves."""
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "error", "Global.use_cls": False,
                              "EngineConfig.onnxruntime.intra_op_num_threads": 1})

    def read(rgb: np.ndarray) -> list:
        out = engine(np.ascontiguousarray(rgb[:, :, ::-1]))
        return [] if out.boxes is None else list(out.txts)
    return read


def part_footage(reader: Reader, clips: dict) -> None:
    rows = []
    for kind, (video, _) in clips.items():
        times, rgbs = samples(video, OCR_SIDE)
        gate = ChangeGate()
        read = [rgb for rgb in rgbs if not gate.unchanged(rgb)]
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for rgb in read:
            reader.read(rgb)
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
        hours = (times[-1] + 1) / 3600
        every = cpu / len(read) * len(rgbs)
        rows.append([kind, f"{len(read)}/{len(rgbs)}", f"{wall:.1f}", f"{cpu:.1f}", f"{every:.1f}",
                     f"{cpu / 60 / hours:.0f}", f"{every / 60 / hours:.0f}"])
    table(f"OCR per footage (720p, a sample a second); {machine()}",
          ["footage", "read/sampled (gate)", "OCR wall s", "OCR CPU s", "CPU s, every sample",
           "CPU min per hour (gate)", "CPU min per hour (every sample)"], rows)


def index_seconds(paths: list[Path], root: Path, ocr: bool) -> float:
    cmd = [sys.executable, "-m", "vidsearch.cli", "index", *map(str, paths), "--index", str(root), "--model", TINY,
           *(["--ocr"] if ocr else [])]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return time.perf_counter() - start


def part_index(work: Path, clips: dict, kinds: tuple[str, ...]) -> None:
    rows = []
    for n, kind in enumerate(kinds):
        video = clips[kind][0]
        plain = index_seconds([video], work / f"idx-{n}", False)
        with_text = index_seconds([video], work / f"idx-{n}-ocr", True)
        rows.append([kind, f"{plain:.1f}", f"{with_text:.1f}", f"+{with_text - plain:.1f}",
                     f"{samples_duration(video) / with_text:.1f}x"])
    table(f"vidsearch index of a 720p clip, tiny test model: wall seconds; {machine()}",

          ["footage", "without --ocr", "with --ocr", "--ocr adds", "real-time factor with --ocr"], rows)


def samples_duration(video: Path) -> float:
    import av

    with av.open(str(video)) as container:
        return container.duration / av.time_base


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default="frame,footage,index")
    ap.add_argument("--work", type=Path, default=None, help="Where the footage is kept between runs.")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="4 s of footage, one read of a small frame each way")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="vidsearch-ocr-"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine())
    reader = Reader()
    parts = args.parts.split(",")
    clips = untuned_footage(work / "still", 2 if args.quick else 60)
    if not args.quick:
        clips = {**footage(work / "still"), **clips}
    if "frame" in parts:
        part_frame(work, reader, 1 if args.quick else args.repeats, args.quick)
    if "footage" in parts:
        part_footage(reader, clips)
    if "index" in parts:
        for old in work.glob("idx-*"):
            subprocess.run(["rm", "-rf", str(old)], check=True)
        part_index(work, clips, tuple(clips)[-1:] if args.quick else ("slides", "changing"))


if __name__ == "__main__":
    main()
