"""The CUDA path for real: `vidsearch index --device cuda` (PyTorch, half precision) on a GPU machine.

    python -m benchmarks.cuda [--seconds 60] [--videos 8] [--work DIR] [--json FILE] [--quick]

Generates a 720p30 video (moving noisy content, MPEG-4 part 2 through PyAV, so that no ffmpeg binary is needed),
then prints, with random-weight models of the real architectures (the compute of the real weights):
- the whole pipeline, `Index(device="cuda").add(...)`, against the same on the CPU path, frames/s and real-time factor;
- a library of --videos such videos indexed on CUDA with 1, 2, 4 and 8 files decoded side by side (`--decoders`):
  frames/s, and the hours of footage (sampled at 1 s) that rate indexes in a 10-hour night (goal: 1,000 h, so
  100 frames/s sustained);
- the vectors CUDA fp16 stores against PyTorch fp32 on the CPU for the same frames (cosine: min, median);
- the image tower alone on CUDA fp16 per model of docs/models.md, frames/s at batch 32 and 256;
- a text query's latency on CUDA.
Needs a CUDA GPU; exits 2 without one (--quick: 4 s of video, ViT-B-32 only, and without a GPU it says so and
exits 0).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import GUIDE_MODELS, random_model, random_vit_b32, table


def make_video(path: Path, seconds: int, fps: int = 30, size=(1280, 720), seed: int = 0) -> Path:
    """Moving noisy content with a cut every 10 s, MPEG-4 part 2 at a 1 s keyframe interval."""
    import av

    rng = np.random.default_rng(seed)
    w, h = size
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.bit_rate, stream.gop_size = 8_000_000, fps
        noise = [rng.integers(-8, 8, (h, w, 3), dtype=np.int16) for _ in range(7)]
        for i in range(seconds * fps):
            if i % (10 * fps) == 0:
                base = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
            moved = np.roll(base, 4 * (i % (10 * fps)), axis=1).astype(np.int16) + noise[i % len(noise)]
            frame = av.VideoFrame.from_ndarray(np.clip(moved, 0, 255).astype(np.uint8), format="rgb24")
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def pipeline(model: str, video: Path, index: Path, device: str, seconds: int) -> dict:
    import torch

    import vidsearch

    idx = vidsearch.Index(index, model=model, device=device, batch_size=64)
    t = time.perf_counter()
    idx.embedder.encode_images([np.zeros((448, 796, 3), np.uint8)])  # the model loaded (and on a CPU exported)
    load = time.perf_counter() - t
    t = time.perf_counter()
    report = idx.add([video])
    wall = time.perf_counter() - t
    peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else 0
    out = {"device": device, "frames": report.frames_added, "load_s": round(load, 1), "seconds": round(wall, 1),
           "fps": round(report.frames_added / wall, 1), "realtime": round(seconds / wall, 1), "gpu_mb": round(peak)}
    idx.close()
    return out


def library(model: str, work: Path, videos: int, seconds: int) -> list[list]:
    """Index `videos` distinct 720p videos on CUDA with 1, 2, 4 and 8 decoders: frames/s and a night's footage."""
    import vidsearch

    folder = work / "library"
    folder.mkdir(exist_ok=True)
    for i in range(videos):
        if not (folder / f"v{i}.mp4").is_file():
            make_video(folder / f"v{i}.mp4", seconds, seed=1 + i)  # distinct bytes: copies are indexed once
    rows = []
    for decoders in (1, 2, 4, 8):
        with vidsearch.Index(work / f"library-{decoders}", model=model, device="cuda", batch_size=64,
                             decoders=decoders) as idx:
            idx.embedder.encode_images([np.zeros((448, 796, 3), np.uint8)])  # loaded and warm, as in pipeline()
            t = time.perf_counter()
            frames = idx.add([folder]).frames_added
            fps = frames / (time.perf_counter() - t)
        rows.append([decoders, frames, round(fps, 1), round(fps * 10)])  # a frame a second of footage)
    return rows


def decode_only(video: Path) -> list:
    from vidsearch.extract import open_media

    t = time.perf_counter()
    media = open_media(str(video))
    n = sum(1 for _ in media.frames(1.0, 448))
    media.close()
    wall = time.perf_counter() - t
    return [n, round(wall, 1), round(n / wall, 1)]


def fidelity(model: str, cuda_index: Path) -> dict:
    """The stored CUDA fp16 vectors against PyTorch fp32 on the CPU for the same frames, decoded the same way."""
    import vidsearch
    from vidsearch.embed import Embedder
    from vidsearch.extract import open_media

    idx = vidsearch.Index(cuda_index)
    [source] = idx.sources()
    _, times, stored = idx.frames(source.id)
    cpu = Embedder(model, device="cpu", backend="torch")
    media = open_media(source.path)
    frames = [f.rgb for f in media.frames(idx.interval, cpu.decode_side)]
    media.close()
    want = np.concatenate([cpu.encode_images(frames[i:i + 32]) for i in range(0, len(frames), 32)])
    cos = np.sum(stored * want, axis=1)
    idx.close()
    return {"frames": len(cos), "cos_min": round(float(cos.min()), 5), "cos_median": round(float(np.median(cos)), 5)}


def towers(models: list[tuple[str, str]], work: Path) -> list[list]:
    import torch

    from vidsearch.embed import Embedder

    rows = []
    for name, tag in models:
        try:
            random_model(work / f"m-{name}", name, tag)
            e = Embedder(f"local-dir:{work / f'm-{name}'}", device="cuda")
            side = e.preprocessor.size
            squares = [np.zeros((*side, 3), np.uint8)] * 256
            row = [f"{name} {tag}"]
            for batch in (32, 256):
                e.encode_prepared(squares[:batch])  # warm-up (cuDNN autotune, allocator)
                torch.cuda.synchronize()
                t, n = time.perf_counter(), 0
                while time.perf_counter() - t < 2.0:
                    e.encode_prepared(squares[:batch])
                    n += batch
                torch.cuda.synchronize()
                row.append(round(n / (time.perf_counter() - t)))
            e.encode_text(["warm-up"])
            t = time.perf_counter()
            for i in range(20):
                e.encode_text([f"a photo of a dog number {i}"])
            row.append(round((time.perf_counter() - t) / 20 * 1000, 2))
            rows.append(row)
            del e
            torch.cuda.empty_cache()
        except Exception as err:  # one model that cannot load must not hide the others' figures
            rows.append([f"{name} {tag}", "-", "-", f"failed: {type(err).__name__}: {str(err)[:80]}"])
    return rows


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--videos", type=int, default=8, help="videos in the library decoded side by side")
    ap.add_argument("--work")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--quick", action="store_true", help="4 s of video and ViT-B-32 only; no GPU is not an error")
    args = ap.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("No CUDA GPU here: nothing to measure.", file=sys.stderr)
        return 0 if args.quick else 2
    if args.quick:
        args.seconds, args.videos = 4, 2
    work = Path(args.work or tempfile.mkdtemp(prefix="vidsearch-cuda-"))
    print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}", flush=True)
    model = random_vit_b32(work / "vit-b-32")
    video = make_video(work / "clip.mp4", args.seconds)
    runs = [pipeline(model, video, work / f"index-{d}", d, args.seconds) for d in ("cuda", "cpu")]
    table(f"Pipeline, {args.seconds} s of 720p30, 1 s interval, ViT-B-32 random weights",
          ["device", "model load s", "frames", "index s", "frames/s", "real-time x", "GPU MB"],
          [[r["device"], r["load_s"], r["frames"], r["seconds"], r["fps"], r["realtime"], r["gpu_mb"]] for r in runs])
    table("Decoding alone (one thread, frames at the model's decode size)", ["frames", "seconds", "frames/s"],
          [decode_only(video)])
    lib = library(model, work, args.videos, args.seconds)
    table(f"A library of {args.videos} x {args.seconds} s of 720p30 on CUDA, files decoded side by side "
          f"({os.cpu_count()} CPUs)", ["decoders", "frames", "frames/s", "hours of footage a 10 h night"], lib)
    fid = fidelity(model, work / "index-cuda")
    table("CUDA fp16 stored vectors vs CPU fp32", ["frames", "cosine min", "cosine median"],
          [[fid["frames"], fid["cos_min"], fid["cos_median"]]])
    rows = towers(GUIDE_MODELS[:1] if args.quick else GUIDE_MODELS, work)
    table("Image tower on CUDA fp16 (frames/s) and a text query (ms)", ["model", "batch 32", "batch 256", "text ms"],
          rows)
    if args.json:
        Path(args.json).write_text(json.dumps({"pipeline": runs, "library": lib, "fidelity": fid, "towers": rows},
                                              indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
