"""vidsearch benchmark: indexing speed, image throughput and search latency, each against a baseline.

    python -m benchmarks.bench [index] [still] [images] [search] [ray] [models] [coldstart] [--minutes 5] [--work DIR]
                               [--footage KIND,...] [--real FILE ...] [--quick]

Media are generated with ffmpeg; the model is ViT-B-32 with random weights saved in open_clip's local-dir format
(the compute of the real weights, loaded through the same path as a user's model). Each measurement runs in a
child process so that its peak RSS is its own. Prints one table per part. `--quick` runs every part named on tiny
data with the test model (seconds each: it checks that the benchmark still runs; its figures mean nothing).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import (
    GUIDE_MODELS,
    ROOT,
    TINY,
    fill_catalog,
    machine,
    make_images,
    make_video,
    random_model,
    random_vit_b32,
    synthetic,
    table,
)

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
    squares = [e.prepare(np.random.default_rng(i).integers(0, 255, (360, 640, 3), dtype=np.uint8))
               for i in range(batch)]  # the model's own input size
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
    """The Ray path on a local Ray, through `Index.add(ray=True, ray_workers=N)`: Ray's own start timed apart; the
    workers' model loads are part of the indexing time."""
    import ray

    from vidsearch import Index

    shutil.rmtree(work, ignore_errors=True)
    t = time.perf_counter()
    ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    startup = time.perf_counter() - t
    t, cpu = time.perf_counter(), time.process_time()
    with Index(work, model=model, batch_size=batch) as idx:
        report = idx.add(paths, ray=True, ray_workers=workers)
    seconds, cpu_s = time.perf_counter() - t, time.process_time() - cpu
    ray.shutdown()
    return {"seconds": seconds, "cpu_s": cpu_s, "frames": report.frames_added, "startup": startup}


QUICK = False  # --quick: measurements run in this process (figures that mean nothing, in seconds)


def child(name: str, *args) -> dict:
    """Run one measurement in a fresh process; add its peak RSS."""
    if QUICK:
        return {**MEASURES[name](*args), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench", "_measure", name, json.dumps(args)],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- parts -----------------------------------------------------------------------------------------------------

def part_index(work: Path, model: str, minutes: float, batch: int) -> None:
    video = make_video(work / f"720p_{minutes:g}min.mp4", minutes * 60)
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
    table(f"Indexing {minutes:g} min of 720p30 H.264 (8 Mbit/s, keyframe every 1.5 s), 1 s interval; {machine()}",
          ["what", "frames", "frames/s", "real-time factor", "seconds", "CPU s", "peak RSS MB"], rows)
    speedup = float(rows[-1][4]) / float(rows[0][4])
    print(f"pipeline vs naive loop: {speedup:.1f}x faster")


def part_still(work: Path, model: str, batch: int, kinds: list[str] | None, real: list[str], quick: bool) -> None:
    """Still-shot footage beside always-changing video: change-aware embedding against embedding every sample and
    against the naive loop, in the same run, and whether the moments found are the same. The footage the change
    thresholds were chosen on (benchmarks.common `footage`), and footage they were not: a generated recorded lecture
    with a webcam corner (`untuned_footage`) and any real videos given with --real."""
    from benchmarks.common import footage, untuned_footage

    tuned = ("slides", "slides-dark", "screencast", "camera", "changing")  # what footage() renders
    wanted = not quick and (not kinds or any(k in kinds for k in tuned))
    sources = {k: (v, "yes") for k, (v, _) in footage(work / "still").items()} if wanted else {}
    sources.update({k: (v, "no") for k, (v, _) in untuned_footage(work / "still", 4 if quick else 60).items()})
    sources.update({f"{Path(f).name} (real)": (Path(f), "no") for f in real})
    rows = []
    for kind, (video, tuned) in sources.items():
        if kinds and kind not in kinds:
            continue
        secs = _duration(video)
        reused = child("pipeline", model, [str(video)], str(work / f"idx-{kind}"), batch)
        full = child("pipeline", model, [str(video)], str(work / f"idx-{kind}-full"), batch, False)
        naive = child("naive_video", model, str(video))
        same = child("same_moments", str(work / f"idx-{kind}"), str(work / f"idx-{kind}-full"))
        rows.append([kind, tuned, f"{reused['embedded']}/{reused['frames']}", f"{secs / reused['seconds']:.1f}x",
                     f"{secs / full['seconds']:.1f}x", f"{secs / naive['seconds']:.1f}x",
                     f"{naive['seconds'] / reused['seconds']:.1f}x", f"{same['worst_s']:g}",
                     "yes" if same["same_order"] else "no"])
    table(f"Change-aware embedding, 1 s interval, real-time factors; {machine()}",
          ["footage", "thresholds tuned on it", "embedded/sampled", "with reuse", "every sample", "naive loop",
           "reuse vs naive", "top-10 moments: worst shift s", "same videos, same order"], rows)


def _duration(video: Path) -> float:
    import av

    with av.open(str(video)) as container:
        return container.duration / av.time_base


def part_ray(work: Path, model: str, minutes: float, batch: int, workers: tuple[int, ...] = (1, 2)) -> None:
    """The index part's video twice, so that two workers each have a file: once as it is and once remuxed into
    Matroska (the same frames in other bytes: a byte copy would be recorded as a copy, not decoded)."""
    from benchmarks.common import FFMPEG

    video = make_video(work / f"720p_{minutes:g}min.mp4", minutes * 60)
    lib = work / f"ray_library_{minutes:g}min"
    lib.mkdir(exist_ok=True)
    if not (lib / "a.mp4").exists():
        os.link(video, lib / "a.mp4")
    if not (lib / "b.mkv").exists():
        subprocess.run([FFMPEG, "-loglevel", "error", "-i", str(video), "-c", "copy", str(lib / "b.mkv")], check=True)
    secs = 2 * minutes * 60
    rows = []
    for label, name, args in [
        ("local pipeline (vidsearch index)", "pipeline", (model, [str(lib)], str(work / "idx_ray"), batch)),
        *((f"Ray, {n} worker{'s' if n > 1 else ''}", "ray", (model, [str(lib)], str(work / "idx_ray"), batch, n))
          for n in workers),
    ]:
        r = child(name, *args)
        rows.append([label, r["frames"], f"{r['frames'] / r['seconds']:.1f}", f"{secs / r['seconds']:.1f}x",
                     f"{r['seconds']:.1f}", f"{r['cpu_s']:.1f}", f"{r['startup']:.1f}" if "startup" in r else "-",
                     f"{r['peak_rss_mb']:.0f}"])
    table(f"Indexing 2 x {minutes:g} min of 720p30 H.264 (the index part's video, two sources), 1 s interval, "
          f"local Ray; {machine()}",
          ["what", "frames", "frames/s", "real-time factor", "seconds", "driver CPU s", "ray.init s",
           "driver peak RSS MB"], rows)


def part_images(work: Path, model: str, batch: int, n: int) -> None:
    folder = make_images(work / f"images_{n}", n)
    rows = []
    for label, name, args in [
            ("vidsearch index (batched)", "pipeline", (model, [str(folder)], str(work / "idx_img"), batch)),
            ("one image at a time", "naive_images", (model, str(folder)))]:
        r = child(name, *args)
        rows.append([label, r["frames"], f"{r['frames'] / r['seconds']:.1f}", f"{r['seconds']:.1f}"])
    table(f"{n} JPEGs, 320-4000 px; {machine()}", ["what", "images", "images/s", "seconds"], rows)
    print(f"batched vs one at a time: {float(rows[1][3]) / float(rows[0][3]):.1f}x faster")


def m_search(root: str, kind: str, queries: int) -> dict:
    """Latency of Index.search (text encode + FAISS + moments and catalog lookup) with the index folder's FAISS file
    of this kind, and the recall@10 of its 100 nearest frames against exact search, for held-out vectors."""
    from vidsearch import Index
    from vidsearch.catalog import Catalog
    from vidsearch.vectors import VECTORS, Vectors

    catalog = Catalog(root)
    dim, ids = int(catalog.meta["dim"]), catalog.frame_ids()
    # The FAISS file is a cache of the catalog that readers load whatever its kind (docs/scaling.md): write this
    # kind's, as a writer's save would.
    Vectors.build(kind, dim, ids, catalog.vectors).save(Path(root) / VECTORS)
    exact = Vectors.build("exact", dim, ids, catalog.vectors)
    catalog.close()
    out = {"n": len(ids)}
    with Index(root) as idx:
        idx.search("warm up", k=10)  # model load, FAISS file load: not query time
        lat, cpu = [], []
        for text in [f"{kind}: a photo of thing number {i}" for i in range(queries)]:  # never a cached text
            t, c = time.perf_counter(), time.process_time()
            idx.search(text, k=10)
            lat.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
    out["p50_ms"], out["p95_ms"] = 1000 * float(np.median(lat)), 1000 * float(np.percentile(lat, 95))
    out["cpu_ms"] = 1000 * float(np.median(cpu))  # all threads: steadier than wall time on a busy machine
    held_out = synthetic(200, seed=1, d=dim)
    _, want = exact.search(held_out, 10)
    _, got = Vectors.load(Path(root) / VECTORS).search(held_out, 10)
    out["recall_at_10"] = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(want, got)]))
    return out


def part_search(work: Path, model: str, sizes: list[int], queries: int) -> None:
    from vidsearch.vectors import kind_for

    dim = json.loads((Path(model.split(":", 1)[1]) / "open_clip_config.json").read_text())["model_cfg"]["embed_dim"]
    rows = []
    for n in sizes:
        root = work / f"search_{n}_{dim}"
        build = fill_catalog(root, n, model, dim)
        r = {kind: child("search", str(root), kind, queries) for kind in ("exact", "ivf")}
        rows.append([f"{n:,}", kind_for(n), f"{r['exact']['p50_ms']:.1f} / {r['exact']['p95_ms']:.1f}",
                     f"{r['exact']['cpu_ms']:.1f}", f"{r['ivf']['p50_ms']:.1f} / {r['ivf']['p95_ms']:.1f}",
                     f"{r['ivf']['cpu_ms']:.1f}", f"{r['ivf']['recall_at_10']:.3f}",
                     f"{build:.0f}" if build else "earlier", f"{max(x['peak_rss_mb'] for x in r.values()):.0f}"])
    table(f"Text search latency (Index.search: encode + search + moments and catalog lookup), {queries} queries, "
          f"k=10; {machine()}",
          ["frames", "vidsearch uses", "exact p50 / p95 ms", "exact CPU p50 ms", "IVF p50 / p95 ms", "IVF CPU p50 ms",
           "IVF recall@10", "catalog fill s",
           "peak RSS MB"], rows)


# -- models: the image and text towers of the models the guide covers -------------------------------------------

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
    while len(times) < 3 or (time.perf_counter() - start < (0 if QUICK else 8) and len(times) < 20):
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


def part_models(work: Path, batch: int, models: list[tuple[str, str]]) -> None:
    """Each model the guide covers with random weights, in its own processes: written to a temporary local-dir
    folder, then timed through the Embedder as vidsearch runs it (backend auto: ONNX Runtime where its export
    works) and on PyTorch; the folder and its ONNX exports are deleted after each model. A model named by a
    `local-dir:` path (--quick: the test model) is timed as it is."""
    rows, notes, base = [], [], {}
    for name, pretrained in models:
        tmp = Path(tempfile.mkdtemp(prefix="models-", dir=work))
        folder = Path(name.split(":", 1)[1]) if name.startswith("local-dir:") else tmp / "model"
        try:
            if name.startswith("local-dir:"):
                w = {"mb": sum(f.stat().st_size for f in folder.iterdir()) / 1e6}
            else:
                w = child("write_model", str(folder), name, pretrained)
            runs = {b: child("towers", f"local-dir:{folder}", batch, b, str(tmp / "cache"))
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
        label = Path(name).parent.name if name.startswith("local-dir:") else name
        rows.append([label, pretrained, "x".join(map(str, auto["input"])), auto["dim"], auto["image_backend"],
                     f"{auto['image_ms']:.1f}", f"{auto['image_cpu_ms']:.1f}",
                     f"{auto['image_cpu_ms'] / base['auto']:.2f}",
                     f"{torch_['image_ms']:.1f}", f"{torch_['image_cpu_ms']:.1f}",
                     f"{torch_['image_cpu_ms'] / base['torch']:.2f}",
                     auto["text_backend"] + ("*" if auto["tokenizer"] else ""), f"{auto['text_ms']:.1f}",
                     f"{auto['text_cpu_ms']:.1f}", f"{auto['peak_rss_mb']:.0f}", f"{w['mb']:.0f}",
                     f"{auto['load']:.1f}/{torch_['load']:.1f}"])
    table(f"Image tower per frame (batch {batch}, fp32; wall: the least disturbed of >= 3 batches, CPU: all of "
          f"them) and text tower per query (median of 20), through vidsearch's Embedder, random weights; "
          f"x ViT-B-32 is the ratio of CPU times (to the first row's); {machine()}",
          ["model", "pretrained", "input", "dim", "image on", "ms/frame", "CPU ms/frame", "x ViT-B-32",
           "torch ms/frame", "torch CPU ms/frame", "x ViT-B-32 (torch)", "text on", "text ms/query",
           "text CPU ms/query", "peak RSS MB", "weights MB", "load auto/torch"], rows)
    for note in notes:
        print(f"  {note}")


MEASURES = {"pipeline": m_pipeline, "decode": m_decode, "embed": m_embed, "naive_video": m_naive_video,
            "naive_images": m_naive_images, "search": m_search, "ray": m_ray,
            "write_model": m_write_model, "towers": m_towers, "same_moments": m_same_moments}


def main() -> None:
    global QUICK
    if len(sys.argv) > 1 and sys.argv[1] == "_measure":
        out = MEASURES[sys.argv[2]](*json.loads(sys.argv[3]))
        out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(out))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("parts", nargs="*", default=["index", "images", "search"],
                    choices=["index", "still", "images", "search", "ray", "models", "coldstart"])
    ap.add_argument("--minutes", type=float, default=5.0, help="length of the generated video")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")], default=[10_000, 100_000, 1_000_000],
                    help="index sizes for the search part, comma-separated")
    ap.add_argument("--queries", type=int, default=100, help="text queries timed per index kind (search part)")
    ap.add_argument("--footage", type=lambda v: v.split(","), help="still part: only these kinds, comma-separated")
    ap.add_argument("--real", nargs="*", default=[], help="still part: real videos to add (by hand)")
    ap.add_argument("--quick", action="store_true", help="tiny data and the test model, in-process: seconds a part")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "vidsearch-bench",
                    help="where generated media and indexes go (reused between runs)")
    args = ap.parse_args()
    QUICK = args.quick
    if args.quick:  # what each part does, on the least data that goes through it
        args.minutes, args.sizes, args.queries, args.work = 0.05, [3000], 5, args.work / "quick"
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    model = TINY if args.quick else random_vit_b32(args.work / "vit-b-32-random")
    if "index" in args.parts:
        part_index(args.work, model, args.minutes, args.batch_size)
    if "still" in args.parts:
        part_still(args.work, model, args.batch_size, args.footage, args.real, args.quick)
    if "images" in args.parts:
        part_images(args.work, model, args.batch_size, 8 if args.quick else 500)
    if "search" in args.parts:
        part_search(args.work, model, args.sizes, args.queries)
    if "ray" in args.parts:
        part_ray(args.work, model, args.minutes, args.batch_size, (1,) if args.quick else (1, 2))
    if "models" in args.parts:
        part_models(args.work, args.batch_size, [(TINY, "")] if args.quick else GUIDE_MODELS)
    if "coldstart" in args.parts:  # each figure in a fresh process: benchmarks/coldstart.py
        from benchmarks import coldstart

        coldstart.report(args.work / "coldstart", args.sizes, 3, args.quick)


if __name__ == "__main__":
    main()
