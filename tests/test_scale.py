"""Safe on a real home server: a video longer than SQLite's variable limit, reads that never wait for a writer,
`/api/info` without walking the thumbnails, an index that imports on Windows (no fcntl) and leaves the host
program's logging alone."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from media import FFMPEG, segments_video

import vidsearch
from vidsearch import ingest, store, vectors
from vidsearch.catalog import Catalog
from vidsearch.store import THUMBS, Store
from vidsearch.web import create_app

ROOT = Path(__file__).resolve().parent.parent
HOURS = 10
STEP = 10  # seconds between the long video's frames: 3,600 samples, indexed in seconds with the tiny model
LIMIT = 500  # SQL variables a statement may hold, lowered below the long video's sample count
WAIT = 120  # seconds a read may take on a loaded machine before the test calls it blocked: a guard, not a timing


def long_video(path: Path) -> Path:
    """A 10-hour H.264 video of tiny red frames, one every STEP seconds (under a second to make)."""
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"color=c=red:s=64x36:r=1/{STEP}:d={HOURS * 3600}", "-c:v", "libx264", "-preset", "ultrafast",
                    "-g", "360", "-pix_fmt", "yuv420p", str(path)], check=True)
    return path


@pytest.fixture
def low_limit(monkeypatch):
    """Every SQLite connection the test opens allows LIMIT variables a statement (Python 3.11+ can lower it), as a
    build of SQLite compiled with a small SQLITE_MAX_VARIABLE_NUMBER would."""
    if not hasattr(sqlite3.Connection, "setlimit"):
        pytest.skip("lowering SQLite's variable limit needs Python 3.11")
    connect = sqlite3.connect

    def limited(*args, **kwargs):
        db = connect(*args, **kwargs)
        db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, LIMIT)
        return db
    monkeypatch.setattr(sqlite3, "connect", limited)


def test_a_ten_hour_video_over_the_variable_limit_indexes_searches_and_opens(tmp_path, tiny_model, low_limit):
    with pytest.raises(sqlite3.OperationalError, match="too many SQL variables"):  # the limit bites
        sqlite3.connect(":memory:").execute(f"SELECT 1 WHERE 1 IN ({','.join('?' * (LIMIT + 1))})",
                                            list(range(LIMIT + 1)))
    video = long_video(tmp_path / "long.mp4")
    with vidsearch.Index(tmp_path / "index", model=tiny_model) as idx:
        report = idx.add([video], reuse=True)
        assert report.frames_added == HOURS * 3600 // STEP > LIMIT
        (source,) = idx.sources()
        assert source.duration >= HOURS * 3600 - STEP

        ids, times, _ = idx.frames(source.id)
        assert len(idx._opened.catalog.frames(ids)) == len(ids)  # the watch page's read of every sample
        samples, moments = idx.video(source.id, "red", min_score=-1)  # the per-sample scores of the watch page
        assert len(samples) == len(ids) and moments
        hits = idx.search("red", k=1000, min_score=-1)  # fetches 10 × k frames
        assert hits and all(h.source == str(video) for h in hits)

        client = create_app(idx).test_client()
        page = client.get(f"/watch/{source.id}?q=red&min_score=-1")
        assert page.status_code == 200 and b"long.mp4" in page.data
        found = client.get("/api/search?q=red&k=200&min_score=-1")
        assert found.status_code == 200 and found.json["count"] >= 1


def test_reads_do_not_wait_for_a_commit_in_progress(tmp_path, tiny_model, monkeypatch):
    library = tmp_path / "library"
    segments_video(library / "red.mp4", [(3, "circle", "red")])
    idx = vidsearch.Index(tmp_path / "index", model=tiny_model)
    idx.add([library])
    (red,) = idx.sources()
    idx.search("a red circle")  # the model loads before the writer starts
    segments_video(library / "blue.mp4", [(3, "square", "blue")])

    inside, let_go = threading.Event(), threading.Event()
    forget_skip = Catalog.forget_skip

    def held(self, path):  # the last step of put_source's transaction, after its thumbnails were moved
        if path.endswith("blue.mp4"):
            inside.set()
            let_go.wait()
        forget_skip(self, path)
    monkeypatch.setattr(Catalog, "forget_skip", held)
    writer = threading.Thread(target=idx.add, args=([library],))
    writer.start()
    try:
        assert inside.wait(WAIT)
        seen, done = {}, threading.Event()

        def read():
            client = create_app(idx).test_client()
            seen["hits"] = {h.source for h in idx.search("a blue square", min_score=-1)}
            seen["samples"] = len(idx.video(red.id, "red")[0])
            seen["info"] = client.get("/api/info").json
            seen["watch"] = client.get(f"/watch/{red.id}?q=red").status_code
            done.set()
        threading.Thread(target=read, daemon=True).start()
        assert done.wait(WAIT), "a read waited for the writer's commit"
        assert seen["hits"] == {str(library / "red.mp4")}  # the catalog as last committed
        assert seen["info"]["sources"] == 1 and seen["watch"] == 200 and seen["samples"] == 3
    finally:
        let_go.set()
        writer.join()
    assert {s.path for s in idx.sources()} == {str(library / "red.mp4"), str(library / "blue.mp4")}
    assert idx.search("a blue square", k=1)[0].source == str(library / "blue.mp4")
    idx.close()


def put(s: Store, tmp_path: Path, path: str, vecs: np.ndarray) -> list[int]:
    """A source of these frame vectors (one a second), with a staged thumbnail file of 3 bytes each."""
    staged = []
    for i in range(len(vecs)):
        staged.append(tmp_path / f"{path.strip('/')}-{i}.jpg")
        staged[-1].write_bytes(b"jpg")
    return s.put_source(path, "video", 0, 0, len(vecs), 1, 16, 16, [(float(i), v, f) for i, (v, f) in
                                                                   enumerate(zip(vecs, staged))])


def test_searches_go_on_while_the_writer_rebuilds_the_faiss_index(tmp_path, monkeypatch):
    monkeypatch.setattr(vectors, "EXACT_LIMIT", 100)
    x = np.random.default_rng(0).standard_normal((300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    s = Store.create(tmp_path / "idx", model="m", pretrained="", dim=16, interval=1.0, min_score=0.2)
    put(s, tmp_path, "/a.mp4", x[:50])
    s.save_vectors()  # exact
    put(s, tmp_path, "/b.mp4", x[50:])  # 300 frames: the next save builds an IVF index from the catalog

    inside, let_go = threading.Event(), threading.Event()
    build = vectors.Vectors.build

    def held(*args, **kwargs):
        inside.set()
        let_go.wait()
        return build(*args, **kwargs)
    monkeypatch.setattr(vectors.Vectors, "build", held)
    writer = threading.Thread(target=s.save_vectors)
    writer.start()
    try:
        assert inside.wait(WAIT)
        found, done = {}, threading.Event()

        def read():
            found["ids"] = s.vectors.search(x[200:201], 1)[1][0].tolist()
            done.set()
        threading.Thread(target=read, daemon=True).start()
        assert done.wait(WAIT), "a search waited for the FAISS rebuild"
        assert found["ids"] == [201]  # the exact index in memory until the new one is ready
    finally:
        let_go.set()
        writer.join()
    assert s.vectors.synced().kind == "ivf" and Store(tmp_path / "idx").vectors.synced().kind == "ivf"
    assert s.vectors.search(x[200:201], 1)[1][0].tolist() == [201]


def _walked(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and "staging" not in p.parts)


def test_info_counts_thumbnails_without_walking_them(tmp_path, tiny_model, monkeypatch):
    library = tmp_path / "library"
    segments_video(library / "a.mp4", [(2, "circle", "red"), (2, "square", "blue")])
    segments_video(library / "b.mp4", [(3, "triangle", "green")])
    root = tmp_path / "index"
    with vidsearch.Index(root, model=tiny_model) as idx:
        idx.add([library])
        (library / "b.mp4").unlink()
        segments_video(library / "a.mp4", [(5, "circle", "yellow")])  # changed: its old thumbnails go
        idx.add([library])
        assert len(list((root / THUMBS).rglob("*.jpg"))) == 5
        want = _walked(root)

        def refused(*args, **kwargs):
            raise AssertionError("the thumbnails were walked")

        def scandir(path="."):
            if THUMBS in Path(path).parts:
                refused()
            return real_scandir(path)
        real_scandir = os.scandir
        monkeypatch.setattr(os, "walk", refused)
        monkeypatch.setattr(os, "listdir", refused)
        monkeypatch.setattr(os, "scandir", scandir)
        monkeypatch.setattr(Path, "rglob", refused)
        info = create_app(idx).test_client().get("/api/info")
        assert info.status_code == 200 and info.json["size_bytes"] == want
        monkeypatch.undo()

    # An index written by an older vidsearch has no figure: walked until the next run records it.
    db = sqlite3.connect(root / "catalog.sqlite")
    db.execute("DELETE FROM meta WHERE key='thumbnail_bytes'")
    db.commit()
    db.close()
    with vidsearch.Index(root) as idx:
        assert idx.stats().size_bytes == _walked(root)
        segments_video(library / "c.mp4", [(2, "circle", "blue")])
        idx.add([library])
        assert idx._opened.catalog.read_meta()["thumbnail_bytes"] == _walked(root / THUMBS)


NO_FCNTL = """
import sys
sys.modules["fcntl"] = None  # as on Windows
import vidsearch, vidsearch.cli, vidsearch.web, vidsearch.watch
from vidsearch.ingest import WriterLock
from pathlib import Path
lock = WriterLock(Path(sys.argv[1]))
lock.release()
print("imported")
"""


# The package without its __init__ (and so without vidsearch.index, which imports vidsearch.clips): what indexes
# and writes an index, down to the WriterLock.
def no_fcntl(script: str, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "idx"), str(ROOT / "vidsearch")],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "imported"


def test_vidsearch_imports_without_fcntl(tmp_path):
    no_fcntl(NO_FCNTL, tmp_path)


def test_one_writer_at_a_time(tmp_path):
    first = ingest.WriterLock(tmp_path)
    with pytest.raises(RuntimeError, match="Another vidsearch run is writing to"):
        ingest.WriterLock(tmp_path)
    out = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from vidsearch.ingest import "
                          "WriterLock; WriterLock(Path(sys.argv[1]))", str(tmp_path)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 1 and "Another vidsearch run is writing to" in out.stderr
    first.release()
    ingest.WriterLock(tmp_path).release()


HOST_LOGGING = """
import json, logging, sys
logging.disable(logging.WARNING)  # the host program's settings
logging.getLogger("onnxscript").setLevel(logging.INFO)
logging.getLogger("open_clip").setLevel(logging.DEBUG)
import vidsearch
from vidsearch.embed import Embedder
import numpy as np
e = Embedder(sys.argv[1])
e.encode_images([np.zeros((64, 64, 3), np.uint8)])
e.encode_text(["a red circle"])
levels = {name: logging.getLogger(name).level for name in ("onnxscript", "open_clip", "huggingface_hub")}
print(json.dumps({"disable": logging.root.manager.disable, "handlers": len(logging.root.handlers),
                  "filters": len(logging.root.filters), **levels}))
"""


def test_embedding_leaves_the_host_programs_logging_alone(tmp_path, tiny_model):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_CACHE_HOME": str(tmp_path)}  # exports the ONNX towers afresh
    out = subprocess.run([sys.executable, "-c", HOST_LOGGING, tiny_model], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "vidsearch" / "onnx").is_dir()
    after = json.loads(out.stdout.strip().splitlines()[-1])
    assert after["disable"] == 30 and after["handlers"] == after["filters"] == 0
    assert after["onnxscript"] == 20 and after["open_clip"] == 10
    assert after["huggingface_hub"] in (0, 30)  # the hub client's own default, as it was


def test_in_lists_split_under_the_variable_limit(tmp_path, low_limit):
    s = Store.create(tmp_path / "idx", model="m", pretrained="", dim=16, interval=1.0, min_score=0.2)
    n = 3 * LIMIT + 7
    ids = put(s, tmp_path, "/long.mp4", np.eye(16, dtype=np.float32)[np.arange(n) % 16])
    assert len(s.catalog.frames(ids)) == len(s.catalog.vectors(ids)) == n
    assert s.catalog.frame_words(ids) == {}
    paths = [f"/p{i}.mp4" for i in range(n)]
    assert s.catalog.copy_paths(paths) == {}
    assert s.catalog.read_meta()["thumbnail_bytes"] == 3 * n
    assert s.remove_source("/long.mp4") and s.catalog.read_meta()["thumbnail_bytes"] == 0
    assert not any(p.is_file() for p in (tmp_path / "idx" / THUMBS).rglob("*.jpg"))
    assert store.thumb_path(s.root, ids[0]).parent.is_dir()
