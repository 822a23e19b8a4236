"""Cold start: what a new process pays before its first answer, against the same search in a warm process.

    python -m benchmarks.coldstart [--quick] [--sizes 10000,1000000] [--runs 3] [--work DIR]
    python -m benchmarks.bench coldstart [--sizes ...] [--quick]   (the same, as a part of bench)

Every figure is taken in a fresh process (the OS file cache stays warm: a first run after a reboot pays the disk
too). The model is ViT-B-32 with random weights (benchmarks.common.random_model: the real compute and file
sizes); the index is benchmarks.common's synthetic 512-d library written straight into a catalog whose model is that
one, with its FAISS file saved as `vidsearch index` leaves it. Printed per size:

- cli: `python -m vidsearch.cli search TEXT` wall time, with the cached text tower (vidsearch.textcache) and the
  FAISS file mapped; the same without vectors.STATE (the file read into memory and compared with the catalog, as
  before STATE); and in a fresh process that loads the model first (the path before textcache, and still that of
  image queries);
- serve: `vidsearch serve` start to its first answer (the home page), the first search issued right then (it waits
  for the background load of the text tower and the vectors, Index.warm, not for the model's) and, in a second
  server, the first search issued once the model has loaded too, then the p50 of the next searches;
- in-process: the p50 of text searches in one warm process, for comparison;
- faiss: the FAISS file read into memory (as for a file behind the catalog) against mapped (as when
  vectors.STATE says the file is current: what `vidsearch search` does after `vidsearch index`), and the first two
  searches on each.

--quick: 2,000 frames, one run each and the 4 MB test model (tests/tiny_clip) instead of ViT-B-32: it checks that
the benchmark runs, its figures mean little. The first run writes the model, exports it (once: the cache goes with
--work) and builds the libraries: minutes at 1M frames (2 GB of vectors in the catalog, 2 GB of FAISS file).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from benchmarks.common import ROOT, TINY, fill_catalog, random_model

TEXTS = [f"a photo of {w} at dusk" for w in ("a dog", "a red car", "two people", "a beach", "snow", "a city",
                                              "a cat", "a boat", "a birthday cake", "fireworks", "a forest",
                                              "a kitchen", "a bicycle", "a horse", "a bridge", "the sea")]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}


def prepare(work: Path, sizes: list[int], quick: bool) -> str:
    """The random ViT-B-32 (the test model with --quick), exported once (as the first `vidsearch index` does), and a
    library per size."""
    folder = work / "vit-b-32"
    if not quick and not (folder / "open_clip_model.safetensors").is_file():
        random_model(folder, "ViT-B-32", "laion2b_s34b_b79k")
    model = TINY if quick else f"local-dir:{folder}"
    subprocess.run([sys.executable, "-c", "import sys; from vidsearch.embed import Embedder; "
                    "Embedder(sys.argv[1]).ready(print)", model], env=ENV, check=True)
    for n in sizes:
        library(work / f"lib{n}", n, model)
    return model


def library(root: Path, n: int, model: str) -> None:
    import json

    from vidsearch.catalog import Catalog
    from vidsearch.store import Store
    from vidsearch.vectors import STATE

    t = time.perf_counter()
    config = Path(model.removeprefix("local-dir:")) / "open_clip_config.json"
    fill_catalog(root, n, model, json.loads(config.read_text())["model_cfg"]["embed_dim"])
    catalog = Catalog(root)
    catalog.set_meta("min_score", -1.0)  # random weights: every search shows its results
    catalog.close()
    store = Store(root)
    if not (store.vectors.path.is_file() and (root / STATE).is_file()):
        store.save_vectors()
        print(f"  built the {n}-frame library in {time.perf_counter() - t:.0f} s", flush=True)
    store.close()


def wall(args: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(args, env=ENV, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t


FULL = """
import sys
import vidsearch
with vidsearch.Index(sys.argv[1]) as idx:
    idx.embedder  # the model first: the path before textcache
    idx.search(sys.argv[2])
"""

WARM = """
import statistics, sys, time
import vidsearch
with vidsearch.Index(sys.argv[1]) as idx:
    idx.warm().join()
    idx.search("warming up")
    times = []
    for text in sys.argv[2:]:
        t = time.perf_counter()
        idx.search(text)
        times.append(time.perf_counter() - t)
print(statistics.median(times))
"""


def cli(root: Path, runs: int) -> dict:
    from vidsearch.vectors import STATE

    def search(i):
        return wall([sys.executable, "-m", "vidsearch.cli", "search", TEXTS[i % len(TEXTS)], "--index", str(root)])

    light = [search(i) for i in range(runs)]
    (root / STATE).rename(root / "state.aside")  # the FAISS file read and caught up, as before STATE
    try:
        unmapped = [search(i) for i in range(runs)]
    finally:
        (root / "state.aside").rename(root / STATE)
    full = [wall([sys.executable, "-c", FULL, str(root), TEXTS[i % len(TEXTS)]]) for i in range(runs)]
    warm = subprocess.run([sys.executable, "-c", WARM, str(root), *TEXTS], env=ENV, check=True,
                          capture_output=True, text=True).stdout
    return {"cli_s": statistics.median(light), "unmapped_s": statistics.median(unmapped),
            "model_first_s": statistics.median(full),
            "in_process_p50_ms": 1000 * float(warm.split()[-1])}


def get(url: str) -> float:
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=600) as r:
        r.read()
    return time.perf_counter() - t


def serve(root: Path, wait_for_load: bool) -> dict:
    """One server: start → first answer, then the first search (at once, or after its load) and the p50 after."""
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "vidsearch.cli", "serve", "--index", str(root), "--port", "0"],
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for line in proc.stdout:
            found = re.search(r"http://\S+:(\d+)/", line)
            if found:
                break
        base = f"http://127.0.0.1:{found.group(1)}"
        get(base + "/")
        out = {"start_to_answer_s": time.perf_counter() - t}
        if wait_for_load:
            time.sleep(wait_for_load)
        search = base + "/api/search?q="
        out["first_search_s"] = get(search + urllib.request.quote(TEXTS[0]))
        out["start_to_first_result_s"] = time.perf_counter() - t
        out["p50_ms"] = 1000 * statistics.median(get(search + urllib.request.quote(x)) for x in TEXTS[1:])
        return out
    finally:
        proc.terminate()
        proc.wait()


FAISS_OPEN = """
import sys, time
from pathlib import Path
import numpy as np
from vidsearch.vectors import Vectors
t = time.perf_counter()
vectors = Vectors.load(Path(sys.argv[1]), mapped=sys.argv[2] == "mapped")
opened = time.perf_counter() - t
q = np.random.default_rng(0).standard_normal((1, vectors.index.d)).astype(np.float32)
times = []
for query in (q, q + 0.1):
    t = time.perf_counter()
    vectors.search(query, 100)
    times.append(time.perf_counter() - t)
print(opened, *times)
"""


def faiss_open(root: Path) -> dict:
    """The FAISS file read into memory (a file behind the catalog, to be caught up) against mapped (one that STATE
    says is current), each in a fresh process, with its first two searches."""
    from vidsearch.vectors import VECTORS

    out = {}
    for name in ("read", "mapped"):
        text = subprocess.run([sys.executable, "-c", FAISS_OPEN, str(root / VECTORS), name], env=ENV,
                              check=True, capture_output=True, text=True).stdout
        opened, first, second = map(float, text.split())
        out[name] = {"open_s": opened, "first_search_ms": 1000 * first, "second_search_ms": 1000 * second}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2,000 frames, one run each, the test model")
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--runs", type=int, default=3, help="fresh processes per cold figure (the median is shown)")
    ap.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "vidsearch-coldstart"))
    args = ap.parse_args()
    report(Path(args.work), [int(s) for s in args.sizes.split(",")], args.runs, args.quick)


def report(work: Path, sizes: list[int], runs: int, quick: bool) -> None:
    """Print the figures per size (also `python -m benchmarks.bench coldstart`)."""
    sizes, runs = ([2_000], 1) if quick else (sizes, runs)
    work.mkdir(parents=True, exist_ok=True)
    os.environ["XDG_CACHE_HOME"] = ENV["XDG_CACHE_HOME"] = str(work / "cache")  # the random weights' exports
    model = prepare(work, sizes, quick)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min); {os.cpu_count()} CPUs")
    for n in sizes:
        root = work / f"lib{n}"
        print(f"\n{n:,} frames ({Path(model).name}{'' if model == TINY else ', random weights'})")
        c = cli(root, runs)
        print(f"  cli text search, cold:        {c['cli_s']:.2f} s  (vectors read into memory and caught up: "
              f"{c['unmapped_s']:.2f} s; loading the model first too: {c['model_first_s']:.2f} s)")
        print(f"  in-process text search p50:   {c['in_process_p50_ms']:.0f} ms")
        s = serve(root, wait_for_load=0)
        print(f"  serve: start to first answer {s['start_to_answer_s']:.2f} s; a search sent then took "
              f"{s['first_search_s']:.2f} s (start to result {s['start_to_first_result_s']:.2f} s)")
        # Long enough for the model too (a search sent at once is answered before it, with the text tower).
        loaded = serve(root, wait_for_load=max(s["start_to_first_result_s"], c["model_first_s"]) + 2)
        print(f"  serve: first search once loaded {1000 * loaded['first_search_s']:.0f} ms, "
              f"then p50 {loaded['p50_ms']:.0f} ms")
        for name, f in faiss_open(root).items():
            print(f"  faiss {name}: open {f['open_s']:.2f} s, first search {f['first_search_ms']:.0f} ms, "
                  f"second {f['second_search_ms']:.0f} ms")
    print(f"\nload after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
