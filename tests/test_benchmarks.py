"""Every benchmark still runs: each one's --quick mode (tiny data, the test model) in a subprocess, as a user runs
it (`python -m benchmarks.NAME --quick`), must exit 0 and print its tables. Their figures are not checked (timings
are not tests); a benchmark that no longer matches the code it measures fails here instead of rotting.

The runs go two at a time (the development machine has 2 cores), started when the first test asks; a test waits
for its own.
"""
from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# name: (arguments after --quick; taking --work WORK; what its output must hold: each table's title)
BENCHMARKS = {
    "bench": (["index", "still", "images", "search", "ray", "models", "coldstart"], True,
              ["Indexing 0.05 min", "Change-aware embedding", "8 JPEGs", "Text search latency", "local Ray",
               "Image tower per frame", "cli text search, cold"]),
    "change": ([], True, ["Decoding: sampling", "Change gate (default thresholds)"]),
    "coldstart": ([], True, ["cli text search, cold", "in-process text search p50", "serve: first search once loaded"]),
    "copies": ([], True, ["one content (from pixels, at indexing)", "search, k = 10"]),
    "pixels": ([], True, ["share of samples within SAME_CELL"]),
    "cuda": ([], True, []),  # on a machine without a GPU it says so, and exits 0
    "diskfull": ([], False, []),  # where no small filesystem can be mounted it says so, and exits 0
    "faults": ([], True, ["trials: 1, killed before the end"]),
    "filters": ([], True, ["with a filter", "recall@10 of the filtered search", "The vector search alone"]),
    "load": ([], True, ["1. Burst of mixed requests", "Text search, one at a time", "3. The storm's requests",
                        "5. Hostile uploads", "server RSS:"]),
    "ocr": ([], True, ["OCR of one frame", "OCR per footage", "vidsearch index of a 720p clip"]),
    "quality": (["--generate"], True, ["text->moment tIoU>=0.3", "text->video"]),
    "scale": ([], True, ["| frames | kind | build |"]),
    "serve_while_indexing": ([], False, ["search p50 / p95: idle", "first request after the run"]),
    "speech": ([], False, ["WER", "random-weight size", "subtitles:"]),
    "stall": ([], False, ["failures: 0"]),
}
# What a benchmark prints instead of its tables where what it needs is missing here.
UNAVAILABLE = {"cuda": "No CUDA GPU here", "diskfull": "Could not mount a small filesystem here"}
ALSO_WHEN_AVAILABLE = {"cuda": ["Pipeline,", "A library of", "CUDA fp16 stored vectors"],
                       "diskfull": ["trials: 1, stopped by"]}


class Runs:
    """The quick runs of the benchmarks the session selected, two at a time, in BENCHMARKS's order."""

    def __init__(self, names: list[str], work: Path):
        self._pool = ThreadPoolExecutor(2)
        self._runs: dict[str, Future] = {n: self._pool.submit(self._run, n, work / n) for n in names}

    @staticmethod
    def _run(name: str, work: Path) -> subprocess.CompletedProcess:
        args, takes_work, _ = BENCHMARKS[name]
        cmd = [sys.executable, "-m", f"benchmarks.{name}", "--quick", *args, *(["--work", str(work)] if takes_work
                                                                              else [])]
        return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})

    def result(self, name: str) -> subprocess.CompletedProcess:
        return self._runs[name].result()

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    names = [item.callspec.params["name"] for item in request.session.items
             if item.module is request.module and hasattr(item, "callspec")]
    r = Runs(names, tmp_path_factory.mktemp("benchmarks"))
    yield r
    r.close()


def test_every_benchmark_is_tested():
    found = {p.stem for p in (ROOT / "benchmarks").glob("*.py")} - {"__init__", "common"}
    assert found == set(BENCHMARKS)


@pytest.mark.parametrize("name", list(BENCHMARKS))
def test_quick_mode_runs(runs, name):
    proc = runs.result(name)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"python -m benchmarks.{name} --quick exited {proc.returncode}:\n{out[-4000:]}"
    titles = BENCHMARKS[name][2]
    if name in UNAVAILABLE and UNAVAILABLE[name] in out:
        assert "|" not in proc.stdout, "said it could not run, yet printed a table"
    else:
        titles = titles + ALSO_WHEN_AVAILABLE.get(name, [])
    missing = [t for t in titles if t not in proc.stdout]
    assert not missing, f"benchmarks.{name} --quick printed no {missing}:\n{proc.stdout[-4000:]}"
