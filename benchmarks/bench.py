"""vidsearch benchmark: indexing speed, image throughput and search latency, each against a baseline.

    python benchmarks/bench.py [index] [images] [search] [ray] [models] [--minutes 5] [--work DIR]

Media are generated with ffmpeg; the model is ViT-B-32 with random weights saved in open_clip's local-dir format
(the compute of the real weights, loaded through the same path as a user's model). Each measurement runs in a
child process so that its peak RSS is its own. Prints one table per part.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent / "tests"))  # random_model.py, media.py


# -- fixtures --------------------------------------------------------------------------------------------------

def random_vit_b32(folder: Path) -> str:
    """ViT-B-32 with random weights in local-dir format (what `--model local-dir:` loads)."""
    import open_clip
    from safetensors.torch import save_file

    if not (folder / "open_clip_model.safetensors").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        cfg = open_clip.get_model_config("ViT-B-32")
        model = open_clip.create_model("ViT-B-32")
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
        pp = {"size": 224, "mean": list(open_clip.OPENAI_DATASET_MEAN), "std": list(open_clip.OPENAI_DATASET_STD),
              "interpolation": "bicubic", "resize_mode": "shortest"}
        (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": pp}))
    return f"local-dir:{folder}"


def make_video(path: Path, seconds: int) -> Path:
    """720p30 H.264 at 8 Mbit/s with a 1.5 s keyframe interval (as phones and cameras write), moving noisy content."""
    if not path.is_file():
        import imageio_ffmpeg

        tmp = path.with_suffix(".part.mp4")
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                        f"testsrc2=size=1280x720:rate=30:duration={seconds}", "-vf", "noise=alls=8:allf=t",
                        "-c:v", "libx264", "-preset", "veryfast", "-g", "45", "-b:v", "8M", "-maxrate", "8M",
                        "-bufsize", "16M", "-pix_fmt", "yuv420p", str(tmp)],
                       check=True)
        tmp.rename(path)
    return path


def make_images(folder: Path, n: int = 500) -> Path:
    """n JPEG photos-like images, 320 to 4000 px on the long side."""
    from PIL import Image

    if len(list(folder.glob("*.jpg"))) < n:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(n):
            long = int(rng.choice([320, 640, 1024, 1920, 3000, 4000]))
            short = int(long * rng.choice([0.56, 0.75, 1.0]))
            w, h = (long, short) if i % 3 else (short, long)
            small = rng.integers(0, 255, (max(h // 64, 2), max(w // 64, 2), 3), dtype=np.uint8)
            img = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
            img.save(folder / f"img{i:04d}.jpg", quality=88)
    return folder


# -- measurements (each runs in its own process) -------------------------------------------------------------

def m_pipeline(model: str, paths: list[str], work: str, batch: int, reuse: bool = True) -> dict:
    import shutil

    from vidsearch import Index

    shutil.rmtree(work, ignore_errors=True)
    idx = Index(work, model=model, batch_size=batch)
    idx.embedder.encode_images([np.zeros((8, 8, 3), np.uint8)])  # model load and runtime setup are not indexing time
    t = time.perf_counter()
    cpu = time.process_time()  # every thread of this process
    report = idx.add(paths, reuse=reuse)
    return {"seconds": time.perf_counter() - t, "cpu_s": time.process_time() - cpu, "frames": report.frames_added,
            "embedded": report.frames_embedded}


def m_same_moments(reused: str, full: str, queries: int = 20) -> dict:
    """Top-10 moments of the same queries in an index made with reuse and one without: the largest difference of
    a moment's start or end, and whether the same videos come in the same order."""
    from vidsearch import Index

    a, b = Index(reused), Index(full)
    rng = np.random.default_rng(0)
    worst, same_order = 0.0, True
    texts = [f"{w} {v}" for w, v in zip(rng.choice(["a slide", "a street", "a person", "text", "a chart",
                                                    "a car", "a title", "people"], queries),
                                         rng.choice(["walking", "with numbers", "at night", "in red", "close up"],
                                                    queries))]
    for text in texts:
        ha, hb = (i.search(text, k=10, per_video=0, min_score=-1) for i in (a, b))
        same_order &= [h.source for h in ha] == [h.source for h in hb]
        worst = max([worst] + [max(abs(x.start - y.start), abs(x.end - y.end)) for x, y in zip(ha, hb)])
    return {"worst_s": worst, "same_order": same_order, "queries": len(texts)}


def m_decode(video: str) -> dict:
    import open_clip

    from vidsearch.extract import open_media
    from vidsearch.preprocess import Preprocessor

    cfg = {"size": 224, "mean": open_clip.OPENAI_DATASET_MEAN, "std": open_clip.OPENAI_DATASET_STD}
    pre = Preprocessor(open_clip.image_transform(224, is_train=False), cfg)  # ViT-B-32's own preprocessing
    t, n = time.perf_counter(), 0
    cpu = time.process_time()  # every thread of this process
    media = open_media(video)
    for fr in media.frames(1.0, pre.decode_side):
        pre.square(fr.rgb)
        n += 1
    return {"seconds": time.perf_counter() - t, "cpu_s": time.process_time() - cpu, "frames": n}


def m_embed(model: str, n: int, batch: int, backend: str = "auto") -> dict:
    from vidsearch.embed import Embedder

    e = Embedder(model, backend=backend)
    squares = [np.random.default_rng(i).integers(0, 255, (224, 224, 3), dtype=np.uint8) for i in range(batch)]
    e.encode_prepared(squares[:2])
    t = time.perf_counter()
    cpu = time.process_time()  # every thread of this process
    for start in range(0, n, batch):
        e.encode_prepared(squares[: min(batch, n - start)])
    return {"seconds": time.perf_counter() - t, "cpu_s": time.process_time() - cpu, "frames": n}


def m_naive_video(model: str, video: str) -> dict:
    """The loop of the reference projects: read every frame, keep one per second, preprocess and encode it alone."""
    import cv2
    import open_clip
    import torch
    from PIL import Image

    m, _, preprocess = open_clip.create_model_and_transforms(model)
    m.eval()
    cap = cv2.VideoCapture(video)
    fps = cap.get(cv2.CAP_PROP_FPS)
    t, i, n = time.perf_counter(), 0, 0
    cpu = time.process_time()  # every thread of this process
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % round(fps) == 0:
            img = Image.fromarray(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            with torch.no_grad():
                m.encode_image(preprocess(img).unsqueeze(0))
            n += 1
        i += 1
    return {"seconds": time.perf_counter() - t, "cpu_s": time.process_time() - cpu, "frames": n}


def m_naive_images(model: str, folder: str) -> dict:
    import open_clip
    import torch
    from PIL import Image

    m, _, preprocess = open_clip.create_model_and_transforms(model)
    m.eval()
    t, n = time.perf_counter(), 0
    cpu = time.process_time()  # every thread of this process
    for p in sorted(Path(folder).glob("*.jpg")):
        with torch.no_grad():
            m.encode_image(preprocess(Image.open(p).convert("RGB")).unsqueeze(0))
        n += 1
    return {"seconds": time.perf_counter() - t, "cpu_s": time.process_time() - cpu, "frames": n}


def m_ray(model: str, paths: list[str], work: str, batch: int, workers: int) -> dict:
    """The Ray path on a local Ray: startup (Ray, one model per worker) timed apart from indexing."""
    import shutil

    import ray

    from vidsearch import ingest_ray
    from vidsearch.store import Store

    shutil.rmtree(work, ignore_errors=True)
    t = time.perf_counter()
    ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    pool = ingest_ray.Workers(None, model, "", "auto", workers).start()
    startup = time.perf_counter() - t
    store = Store.create(work, model=model, pretrained="", dim=pool.dim, interval=1.0, min_score=pool.default_min_score)
    pids = ray.get([a.__ray_call__.remote(lambda self: os.getpid()) for a in pool.actors])

    def workers_cpu() -> float:  # utime + stime of the worker processes (Ray's own daemons are not counted)
        stats = [Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split() for pid in pids]
        return sum(int(f[11]) + int(f[12]) for f in stats) / os.sysconf("SC_CLK_TCK")

    t, cpu, wcpu = time.perf_counter(), time.process_time(), workers_cpu()
    report = ingest_ray.run(store, pool.start, paths, interval=1.0, batch_size=batch)
    seconds, cpu_s = time.perf_counter() - t, time.process_time() - cpu + workers_cpu() - wcpu
    status = "\n".join(Path(f"/proc/{pid}/status").read_text() for pid in pids)
    workers_mb = sum(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")) / 1024
    pool.close()
    ray.shutdown()
    return {"seconds": seconds, "cpu_s": cpu_s, "frames": report.frames_added, "startup": startup,
            "workers_mb": workers_mb}


def child(name: str, *args) -> dict:
    """Run one measurement in a fresh process; add its peak RSS."""
    proc = subprocess.run([sys.executable, str(HERE), "_measure", name, json.dumps(args)], capture_output=True,
                          text=True)
    if proc.returncode:
        raise SystemExit(f"{name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n{title}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))


# -- parts -----------------------------------------------------------------------------------------------------

def part_index(work: Path, model: str, minutes: float, batch: int) -> None:
    video = make_video(work / f"720p_{minutes:g}min.mp4", int(minutes * 60))
    secs = minutes * 60
    rows = []
    for label, name, args in [
        ("vidsearch index (pipeline)", "pipeline", (model, [str(video)], str(work / "idx"), batch)),
        ("  sampling + decoding only", "decode", (str(video),)),
        (f"  embedding only (batch {batch}, ONNX Runtime)", "embed", (model, int(secs), batch)),
        (f"  embedding only (batch {batch}, PyTorch)", "embed", (model, int(secs), batch, "torch")),
        ("naive loop (read all, encode 1 by 1)", "naive_video", (model, str(video))),
    ]:
        r = child(name, *args)
        rows.append([label, r["frames"], f"{r['frames'] / r['seconds']:.1f}", f"{secs / r['seconds']:.1f}x",
                     f"{r['seconds']:.1f}", f"{r['cpu_s']:.1f}", f"{r['peak_rss_mb']:.0f}"])
    table(f"Indexing {minutes:g} min of 720p30 H.264 (8 Mbit/s, keyframe every 1.5 s), 1 s interval, ViT-B-32",
          ["what", "frames", "frames/s", "real-time factor", "seconds", "CPU s", "peak RSS MB"], rows)
    speedup = float(rows[-1][4]) / float(rows[0][4])
    print(f"pipeline vs naive loop: {speedup:.1f}x faster")


def part_still(work: Path, model: str, batch: int) -> None:
    """Still-shot footage (slides with sensor noise and cuts, a fixed camera with motion in part of the frame, a
    screencast) beside always-changing video: change-aware embedding against embedding every sample and against the
    naive loop, in the same run, and whether the moments found are the same."""
    from change import footage  # benchmarks/change.py: the footage its thresholds were chosen on

    rows = []
    for kind, (video, _) in footage(work / "still").items():
        secs = _duration(video)
        reused = child("pipeline", model, [str(video)], str(work / f"idx-{kind}"), batch)
        full = child("pipeline", model, [str(video)], str(work / f"idx-{kind}-full"), batch, False)
        naive = child("naive_video", model, str(video))
        same = child("same_moments", str(work / f"idx-{kind}"), str(work / f"idx-{kind}-full"))
        rows.append([kind, f"{reused['embedded']}/{reused['frames']}", f"{secs / reused['seconds']:.1f}x",
                     f"{secs / full['seconds']:.1f}x", f"{secs / naive['seconds']:.1f}x",
                     f"{naive['seconds'] / reused['seconds']:.1f}x", f"{same['worst_s']:g}",
                     "yes" if same["same_order"] else "no"])
    table("Change-aware embedding, 720p, 1 s interval, ViT-B-32: real-time factors",
          ["footage", "embedded/sampled", "with reuse", "every sample", "naive loop", "reuse vs naive",
           "top-10 moments: worst shift s", "same videos, same order"], rows)


def _duration(video: Path) -> float:
    import av

    with av.open(str(video)) as container:
        return container.duration / av.time_base


def part_ray(work: Path, model: str, minutes: float, batch: int) -> None:
    """The index part's video twice (two hard links: two sources), so that two workers each have a file."""
    video = make_video(work / f"720p_{minutes:g}min.mp4", int(minutes * 60))
    lib = work / f"ray_library_{minutes:g}min"
    lib.mkdir(exist_ok=True)
    for name in ("a.mp4", "b.mp4"):
        if not (lib / name).exists():
            os.link(video, lib / name)
    secs = 2 * minutes * 60
    rows = []
    for label, name, args in [
        ("local pipeline (vidsearch index)", "pipeline", (model, [str(lib)], str(work / "idx_ray"), batch)),
        ("Ray, 1 worker (2 CPUs)", "ray", (model, [str(lib)], str(work / "idx_ray"), batch, 1)),
        ("Ray, 2 workers (1 CPU each)", "ray", (model, [str(lib)], str(work / "idx_ray"), batch, 2)),
    ]:
        r = child(name, *args)
        rows.append([label, r["frames"], f"{r['frames'] / r['seconds']:.1f}", f"{secs / r['seconds']:.1f}x",
                     f"{r['seconds']:.1f}", f"{r['cpu_s']:.1f}", f"{r['startup']:.1f}" if "startup" in r else "-",
                     f"{r['peak_rss_mb']:.0f}", f"{r['workers_mb']:.0f}" if "workers_mb" in r else "-"])
    table(f"Indexing 2 x {minutes:g} min of 720p30 H.264 (the index part's video, two sources), 1 s interval, "
          f"ViT-B-32, local Ray",
          ["what", "frames", "frames/s", "real-time factor", "seconds", "CPU s", "startup s", "peak RSS MB",
           "workers' peak RSS MB"], rows)


def part_images(work: Path, model: str, batch: int) -> None:
    folder = make_images(work / "images")
    rows = []
    for label, name, args in [
            ("vidsearch index (batched)", "pipeline", (model, [str(folder)], str(work / "idx_img"), batch)),
            ("one image at a time", "naive_images", (model, str(folder)))]:
        r = child(name, *args)
        rows.append([label, r["frames"], f"{r['frames'] / r['seconds']:.1f}", f"{r['seconds']:.1f}"])
    table("500 JPEGs, 320-4000 px", ["what", "images", "images/s", "seconds"], rows)
    print(f"batched vs one at a time: {float(rows[1][3]) / float(rows[0][3]):.1f}x faster")


def synthetic(n: int, d: int = 512, seed: int = 0) -> np.ndarray:
    """Clustered unit vectors (CLIP embeddings of a library cluster by scene and subject; uniform ones do not)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4096, d)).astype(np.float32)
    out = np.empty((n, d), np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x = centres[rng.integers(0, len(centres), m)] + 0.6 * rng.standard_normal((m, d)).astype(np.float32)
        out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def fill_catalog(root: Path, model: str, n: int) -> None:
    """A real index folder with n synthetic frames (1000 per source), written straight into the catalog."""
    import shutil

    from vidsearch.store import Store

    if Store.exists(root) and Store(root).counts()["frames"] == n:
        return  # built by an earlier run: the catalog is deterministic
    shutil.rmtree(root, ignore_errors=True)
    store = Store.create(root, model=model, pretrained="", dim=512, interval=1.0, min_score=0.2)
    db = store._db
    vecs = synthetic(n)
    db.execute("BEGIN")
    for s in range(n // 1000):
        db.execute("INSERT INTO sources (id, path, kind, size, mtime, duration, fps, width, height, frames, indexed_at)"
                   " VALUES (?, ?, 'video', 0, 0, 1000, 30, 1280, 720, 1000, 0)", (s + 1, f"/library/v{s:06d}.mp4"))
        db.executemany("INSERT INTO frames (source_id, t, vector) VALUES (?, ?, ?)",
                       [(s + 1, float(i), vecs[s * 1000 + i].tobytes()) for i in range(1000)])
    db.execute("UPDATE meta SET value = '1' WHERE key = 'generation'")
    db.execute("COMMIT")
    store.save_vectors()  # builds the kind of index this size calls for
    store.close()


def m_search(root: str, queries: int) -> dict:
    """Latency of Index.search (text encode + FAISS + catalog lookup), exact and approximate, and IVF recall@10."""
    from vidsearch import Index
    from vidsearch.vectors import Vectors

    idx = Index(root)
    idx.embedder.encode_text([""])  # model load and runtime setup are not query time
    store = idx.store
    store.search(np.zeros((1, 512), np.float32), 1)  # load and sync outside the timing
    out = {"n": store.counts()["frames"]}
    kinds = {}
    current = store._synced_vectors()
    ids = current.ids()
    kinds["exact"] = current if not current.approximate else Vectors.build("exact", 512, ids, store.frame_vectors)
    kinds["approximate"] = current if current.approximate else Vectors.build("ivf", 512, ids, store.frame_vectors)
    for name, vectors in kinds.items():
        store._vectors = vectors
        lat = []
        for text in [f"{name}: a photo of thing number {i}" for i in range(queries)]:  # never a cached text
            t = time.perf_counter()
            idx.search(text, k=10)
            lat.append(time.perf_counter() - t)
        out[name] = {"p50_ms": 1000 * float(np.median(lat)), "p95_ms": 1000 * float(np.percentile(lat, 95))}
    held_out = synthetic(200, seed=1)
    _, want = kinds["exact"].search(held_out, 10)
    _, got = kinds["approximate"].search(held_out, 10)
    out["recall_at_10"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(want, got)]))
    out["default"] = "approximate" if current.approximate else "exact"
    return out


def part_search(work: Path, model: str, sizes: list[int]) -> None:
    rows = []
    for n in sizes:
        root = work / f"search_{n}"
        t = time.perf_counter()
        fill_catalog(root, model, n)
        build = time.perf_counter() - t
        r = child("search", str(root), 100)
        rows.append([f"{n:,}", r["default"], f"{r['exact']['p50_ms']:.1f}", f"{r['exact']['p95_ms']:.1f}",
                     f"{r['approximate']['p50_ms']:.1f}", f"{r['approximate']['p95_ms']:.1f}",
                     f"{r['recall_at_10']:.3f}", f"{build:.0f}", f"{r['peak_rss_mb']:.0f}"])
    table("Text search latency (encode + search + catalog lookup), 100 queries, k=10, ViT-B-32 text tower",
          ["frames", "default", "exact p50 ms", "exact p95 ms", "IVF p50 ms", "IVF p95 ms", "IVF recall@10",
           "build s", "peak RSS MB"], rows)


# -- models: the image and text towers of the models in docs/models.md ------------------------------------------

# (open_clip name, pretrained tag) as docs/models.md's sections name them; ViT-B-32 first, the others are timed
# against it.
GUIDE_MODELS = re.findall(r"^### (\S+) · (\S+)", (Path(__file__).resolve().parent.parent / "docs" / "models.md")
                          .read_text(encoding="utf-8"), flags=re.M)


def random_model(folder: Path, name: str, pretrained: str) -> str:
    """open_clip's `name` with random weights and its `pretrained` tag's preprocessing, as a local-dir model: the
    compute of the real model, loaded the way a user's local copy is."""
    from random_model import random_model as write

    write(folder, name, pretrained)
    return f"local-dir:{folder}"


def m_write_model(folder: str, name: str, pretrained: str) -> dict:
    t = time.perf_counter()
    random_model(Path(folder), name, pretrained)
    size = sum(f.stat().st_size for f in Path(folder).iterdir())
    return {"seconds": time.perf_counter() - t, "mb": size / 1e6}


def m_towers(model: str, batch: int, backend: str, cache: str) -> dict:
    """The image tower's time per frame (batches of `batch` prepared frames) and the text tower's per query, through
    vidsearch's Embedder. A tokenizer that cannot be loaded here (a Hugging Face one that must be downloaded) is
    replaced by open_clip's CLIP tokenizer at the model's context length, so that the towers can still be timed."""
    os.environ["XDG_CACHE_HOME"] = cache  # the ONNX exports of random weights go with the temporary folder
    import open_clip

    from vidsearch.embed import Embedder

    out = {"tokenizer": ""}
    try:
        open_clip.get_tokenizer(model)
    except (ImportError, OSError, ValueError) as e:  # transformers missing; its files missing from the folder
        out["tokenizer"] = f"{type(e).__name__}: {str(e).strip().splitlines()[0][:120]}"
        cfg = json.loads((Path(model.split(":", 1)[1]) / "open_clip_config.json").read_text())["model_cfg"]
        length = cfg["text_cfg"].get("context_length", 77)
        open_clip.get_tokenizer = lambda *a, **k: open_clip.SimpleTokenizer(context_length=length)
    t = time.perf_counter()
    e = Embedder(model, backend=backend)
    out["load_s"] = time.perf_counter() - t
    rng = np.random.default_rng(0)
    squares = [e.prepare(rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)) for _ in range(batch)]
    out["input"] = list(squares[0].shape[:2])
    t = time.perf_counter()
    e.encode_prepared(squares[:2])  # builds the ONNX Runtime session (export, check) where backend is auto
    out["image_setup_s"] = time.perf_counter() - t
    out["image_backend"] = "onnxruntime" if e._sessions.get("image") is not None else "torch"
    e.encode_prepared(squares)  # first full batch: allocations
    out["load"] = os.getloadavg()[0]  # other work on the machine (the timing takes the least disturbed batch)
    times, start, cpu = [], time.perf_counter(), time.process_time()
    while len(times) < 3 or (time.perf_counter() - start < 8 and len(times) < 20):
        t = time.perf_counter()
        e.encode_prepared(squares)
        times.append(time.perf_counter() - t)
    # Wall time: the least disturbed batch. CPU time (all threads of this process, per frame) is the steadier
    # figure on a shared machine: other work delays these threads but adds little to their CPU time.
    out["image_cpu_ms"] = 1000 * (time.process_time() - cpu) / (len(times) * batch)
    out["image_ms"] = 1000 * min(times) / batch
    out["image_ms_median"] = 1000 * float(np.median(times)) / batch
    out["batches"] = len(times)
    out["dim"] = e.dim
    e.encode_text(["a photo of a dog"])  # text session
    out["text_backend"] = "onnxruntime" if e._sessions.get("text") is not None else "torch"
    lat, cpu_lat = [], []
    for i in range(20):
        t, cpu = time.perf_counter(), time.process_time()
        e.encode_text([f"a photo of thing number {i} on a table"])  # never a cached text
        lat.append(time.perf_counter() - t)
        cpu_lat.append(time.process_time() - cpu)
    out["text_ms"] = 1000 * float(np.median(lat))
    out["text_cpu_ms"] = 1000 * float(np.median(cpu_lat))
    return out


def part_models(work: Path, batch: int, models: list[tuple[str, str]] = GUIDE_MODELS) -> None:
    """Each model of docs/models.md with random weights, in its own processes: written to a temporary local-dir
    folder, then timed through the Embedder as vidsearch runs it (backend auto: ONNX Runtime where its export
    works) and on PyTorch; the folder and its ONNX exports are deleted after each model."""
    import shutil

    rows, notes, base = [], [], {}
    for name, pretrained in models:
        tmp = Path(tempfile.mkdtemp(prefix="models-", dir=work))
        try:
            w = child("write_model", str(tmp / "model"), name, pretrained)
            runs = {b: child("towers", f"local-dir:{tmp / 'model'}", batch, b, str(tmp / "cache"))
                    for b in ("auto", "torch")}
        except SystemExit as e:
            rows.append([name, pretrained] + ["failed"] + ["-"] * 14)
            notes.append(f"{name}: {str(e).strip().splitlines()[-1]}")
            continue
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        auto, torch_ = runs["auto"], runs["torch"]
        base = base or {"auto": auto["image_cpu_ms"], "torch": torch_["image_cpu_ms"]}
        if auto["tokenizer"]:
            notes.append(f"{name}: its tokenizer does not load here ({auto['tokenizer']}); text timed with "
                         f"open_clip's CLIP tokenizer at its context length (*)")
        rows.append([name, pretrained, "x".join(map(str, auto["input"])), auto["dim"], auto["image_backend"],
                     f"{auto['image_ms']:.1f}", f"{auto['image_cpu_ms']:.1f}",
                     f"{auto['image_cpu_ms'] / base['auto']:.2f}",
                     f"{torch_['image_ms']:.1f}", f"{torch_['image_cpu_ms']:.1f}",
                     f"{torch_['image_cpu_ms'] / base['torch']:.2f}",
                     auto["text_backend"] + ("*" if auto["tokenizer"] else ""), f"{auto['text_ms']:.1f}",
                     f"{auto['text_cpu_ms']:.1f}", f"{auto['peak_rss_mb']:.0f}", f"{w['mb']:.0f}",
                     f"{auto['load']:.1f}/{torch_['load']:.1f}"])
    table(f"Image tower per frame (batch {batch}, fp32; wall: the least disturbed of >= 3 batches, CPU: all of "
          f"them) and text tower per query (median of 20), through vidsearch's Embedder, random weights; "
          f"x ViT-B-32 is the ratio of CPU times",
          ["model", "pretrained", "input", "dim", "image on", "ms/frame", "CPU ms/frame", "x ViT-B-32",
           "torch ms/frame", "torch CPU ms/frame", "x ViT-B-32 (torch)", "text on", "text ms/query",
           "text CPU ms/query", "peak RSS MB", "weights MB", "load auto/torch"], rows)
    for note in notes:
        print(f"  {note}")


MEASURES = {"pipeline": m_pipeline, "decode": m_decode, "embed": m_embed, "naive_video": m_naive_video,
            "naive_images": m_naive_images, "search": m_search, "ray": m_ray,
            "write_model": m_write_model, "towers": m_towers, "same_moments": m_same_moments}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        out = MEASURES[sys.argv[2]](*json.loads(sys.argv[3]))
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parts", nargs="*", default=["index", "images", "search"],
                    choices=["index", "still", "images", "search", "ray", "models"])
    ap.add_argument("--minutes", type=float, default=5.0, help="length of the generated video")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")], default=[10_000, 100_000, 1_000_000],
                    help="index sizes for the search part, comma-separated")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "vidsearch-bench",
                    help="where generated media and indexes go (reused between runs)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {os.cpu_count()} CPUs, {platform_line()}")
    model = random_vit_b32(args.work / "vit-b-32-random")
    if "index" in args.parts:
        part_index(args.work, model, args.minutes, args.batch_size)
    if "still" in args.parts:
        part_still(args.work, model, args.batch_size)
    if "images" in args.parts:
        part_images(args.work, model, args.batch_size)
    if "search" in args.parts:
        part_search(args.work, model, args.sizes)
    if "ray" in args.parts:
        part_ray(args.work, model, args.minutes, args.batch_size)
    if "models" in args.parts:
        part_models(args.work, args.batch_size)


def platform_line() -> str:
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{cpu}, Python {platform.python_version()}"


if __name__ == "__main__":
    main()
