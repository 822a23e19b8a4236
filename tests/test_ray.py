"""Indexing on Ray (a local Ray started once for the module) gives the index the local path gives."""
import os
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from media import draw, segments_video
from PIL import Image

from vidsearch import Index
from vidsearch.cli import main
from vidsearch.ingest import ray as ingest_ray

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    lib = tmp_path_factory.mktemp("ray") / "library"
    segments_video(lib / "shapes.mp4", [(2, "circle", "red"), (2, "square", "blue"), (1, "triangle", "green")])
    segments_video(lib / "sub" / "short.mp4", [(1.5, "square", "yellow")], size=(180, 320))  # portrait
    Image.fromarray(draw("circle", "purple")).save(lib / "purple.png")
    Image.fromarray(draw("triangle", "orange", background="black")).save(lib / "sub" / "orange.jpg")
    (lib / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 but not a video")
    return lib


def catalog(idx: Index) -> dict:
    """path -> (kind, width, height, duration, pixel signatures, [(t, vector, thumbnail pixels)]), comparable across
    two indexes."""
    out = {}
    for s in idx.sources():
        ids, times, vecs = idx.frames(s.id)
        thumbs = [np.asarray(Image.open(idx.thumbnail(i))) for i in ids]
        signatures = idx._opened.catalog.source_pixels(s.id)  # videos' only
        signatures = signatures if signatures is None else signatures[1].tobytes()
        out[s.path] = (s.kind, s.width, s.height, s.duration, signatures, list(zip(times, vecs, thumbs)))
    return out


def assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for path in a:
        (*meta_a, frames_a), (*meta_b, frames_b) = a[path], b[path]
        assert meta_a == meta_b, path
        assert [t for t, _, _ in frames_a] == [t for t, _, _ in frames_b], path
        for (_, va, ta), (_, vb, tb) in zip(frames_a, frames_b):
            np.testing.assert_allclose(va, vb, atol=1e-4)
            assert ta.shape == tb.shape and np.abs(ta.astype(int) - tb.astype(int)).mean() < 1


def test_ray_path_matches_local_path_and_is_incremental(ray_session, library, tmp_path, tiny_model):
    local = Index(tmp_path / "local", model=tiny_model)
    local_report = local.add([library])
    remote = Index(tmp_path / "ray", model=tiny_model)
    report = remote.add([library], ray=True, ray_workers=2)

    assert sorted(report.added) == sorted(local_report.added) and len(report.added) == 4
    assert report.frames_added == local_report.frames_added == 5 + 2 + 2
    assert report.skipped == local_report.skipped == [(str(library / "broken.mp4"), report.skipped[0][1])]
    assert [(s.path, s.reason) for s in remote.skipped()] == [(s.path, s.reason) for s in local.skipped()]
    assert_same(catalog(local), catalog(remote))
    assert not list((tmp_path / "ray" / "thumbs" / "staging").iterdir())  # every staged thumbnail was committed
    assert remote.search("a blue square", k=1)[0].source == str(library / "shapes.mp4")

    again = remote.add([library], ray=True)
    assert (again.added, again.unchanged, len(again.skipped)) == ([], 4, 1)

    new = library / "sub" / "new.png"
    Image.fromarray(draw("square", "green")).save(new)
    (library / "purple.png").unlink()
    res = CliRunner().invoke(main, ["index", str(library), "--index", str(tmp_path / "ray"), "--ray",
                                    "--ray-workers", "1"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "1 sources indexed (1 frames, 1 embedded), 3 unchanged, 1 skipped, 1 removed" in res.output
    assert f"skipped {library / 'broken.mp4'}: not a readable image or video" in res.output
    local.add([library])
    assert_same(catalog(local), catalog(Index(tmp_path / "ray")))


def test_a_worker_that_cannot_see_the_media_stops_the_run(ray_session, library, tmp_path, tiny_model, monkeypatch):
    class Elsewhere(ingest_ray._Worker):  # a worker on a node without the library's mount (no model needed)
        def __init__(self, *args):
            self.error, self.embedder = None, type("Model", (), {"dim": 32, "default_min_score": 0.4})

        def index(self, cand, interval, batch_size, reuse):
            yield ingest_ray.Missing("node-b")

    monkeypatch.setattr(ingest_ray, "_Worker", Elsewhere)
    idx = Index(tmp_path / "idx", model=tiny_model)
    with pytest.raises(ingest_ray.RayFailure, match="the Ray worker on node-b cannot see .*same path on every node"):
        idx.add([library], ray=True, ray_workers=1)
    assert (idx.stats().sources, idx.stats().skipped) == (0, 0)  # nothing marked unreadable


def test_a_full_disk_on_the_driver_stops_the_run_with_whole_sources(ray_session, library, tmp_path, tiny_model,
                                                                     monkeypatch):
    import errno
    import pathlib

    from vidsearch.errors import WriteError

    written = []

    def write_bytes(self, data):  # the driver stages thumbnails with Path.write_bytes: the disk fills at the 3rd
        if len(written) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(self)
        return pathlib.Path.open(self, "wb").write(data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)
    idx = Index(tmp_path / "idx", model=tiny_model)
    with pytest.raises(WriteError, match="the disk is full"):
        idx.add([library], ray=True, ray_workers=1)
    monkeypatch.undo()
    assert sum(s.frames for s in idx.sources()) <= 2  # whole sources only, with every thumbnail in place
    assert all(idx.thumbnail(i).is_file() for s in idx.sources() for i in idx.frames(s.id)[0])
    assert not list((tmp_path / "idx" / "thumbs" / "staging").iterdir())
    idx.add([library], ray=True, ray_workers=1)  # once there is room, a re-run completes the index
    assert len(idx.sources()) == 4


def test_a_model_the_workers_cannot_load_is_a_usage_error(ray_session, library, tmp_path):
    res = CliRunner().invoke(main, ["index", str(library), "--index", str(tmp_path / "idx"), "--model",
                                    f"local-dir:{tmp_path}", "--ray", "--ray-workers", "1"])
    assert res.exit_code == 2 and f"Error: {tmp_path} is not an open_clip model folder" in res.output
    assert not (tmp_path / "idx").exists()


def test_without_ray_one_sentence_and_exit_2(tmp_path, tiny_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    segments_video(tmp_path / "m" / "a.mp4", [(1, "circle", "red")])
    res = CliRunner().invoke(main, ["index", str(tmp_path / "m"), "--index", str(tmp_path / "idx"), "--ray"])
    assert res.exit_code == 2 and not isinstance(res.exception, ImportError)
    assert res.output == "Error: Indexing on Ray needs Ray, which is not installed: pip install 'vidsearch[ray]'.\n"
    assert not (tmp_path / "idx").exists()


def test_ray_option_is_not_a_path_nor_a_ray_client_address(tmp_path):
    os.makedirs(tmp_path / "m")
    res = CliRunner().invoke(main, ["index", "--ray", str(tmp_path / "m")])
    assert res.exit_code == 2 and "put --ray after the paths" in res.output
    res = CliRunner().invoke(main, ["index", str(tmp_path / "m"), "--ray=ray://head:10001"])
    assert res.exit_code == 2 and "Ray Client addresses (ray://) are not supported" in res.output


def test_a_file_whose_decoding_hangs_on_a_worker_is_skipped_and_the_worker_replaced(ray_session, library, tmp_path,
                                                                                    tiny_model, monkeypatch):
    class Hangs(ingest_ray._Worker):
        def index(self, cand, interval, batch_size, reuse):
            if os.path.basename(cand.path) == "shapes.mp4":
                import threading

                threading.Event().wait()  # a decoder stuck in native code: only ending the actor ends it
            yield from super().index(cand, interval, batch_size, reuse)

    monkeypatch.setattr(ingest_ray, "_Worker", Hangs)
    replaced = []
    real_replace = ingest_ray.Workers.replace
    monkeypatch.setattr(ingest_ray.Workers, "replace", lambda self, a: replaced.append(a) or real_replace(self, a))
    idx = Index(tmp_path / "idx", model=tiny_model, decode_timeout=3)
    report = idx.add([library], ray=True, ray_workers=1)
    stuck = str(library / "shapes.mp4")
    assert (stuck, "decoding stalled for 3 s (no frame came)") in report.skipped and len(replaced) == 1
    # One worker: the run goes on past the stuck file with a fresh worker in its place, and indexes the rest.
    rest = {str(p) for p in library.rglob("*") if p.is_file() and p.name not in ("shapes.mp4", "broken.mp4")}
    assert {s.path for s in idx.sources()} == rest
    assert not list((tmp_path / "idx" / "thumbs" / "staging").iterdir())


def test_a_file_changed_while_a_worker_reads_it_is_skipped_as_locally(ray_session, library, tmp_path, tiny_model,
                                                                      monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "shapes.mp4").write_bytes((library / "shapes.mp4").read_bytes())
    Image.fromarray(draw("circle", "purple")).save(lib / "purple.png")

    class Touches(ingest_ray._Worker):
        def index(self, cand, interval, batch_size, reuse):
            if os.path.basename(cand.path) == "shapes.mp4":
                os.utime(cand.path, (cand.mtime + 5, cand.mtime + 5))  # written to as the worker reads it
            yield from super().index(cand, interval, batch_size, reuse)

    monkeypatch.setattr(ingest_ray, "_Worker", Touches)
    idx = Index(tmp_path / "idx", model=tiny_model)
    report = idx.add([lib], ray=True, ray_workers=1)
    changed = str(lib / "shapes.mp4")
    assert report.skipped == [(changed, "the file changed while it was being indexed (the next run takes it again)")]
    assert [s.path for s in idx.sources()] == [str(lib / "purple.png")]
    monkeypatch.undo()
    assert idx.add([lib], ray=True, ray_workers=1).added == [changed]
