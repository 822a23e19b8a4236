"""The command line as a user runs it."""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from media import FFMPEG, segments_video

from vidsearch.cli import main


@pytest.fixture()
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(main, [str(a) for a in args], catch_exceptions=False)
    return invoke


def test_index_search_info(run, tmp_path, tiny_model, shapes_video):
    path, spans = shapes_video
    (tmp_path / "media").mkdir()
    os.symlink(path, tmp_path / "media" / "shapes.mp4")
    (tmp_path / "media" / "broken.mp4").write_text("nope")
    res = run("index", "media", "--model", tiny_model)
    assert res.exit_code == 0, res.output
    assert "1 sources indexed (12 frames, 4 embedded)" in res.output and "1 skipped" in res.output
    assert "broken.mp4: not a readable image or video" in res.output
    assert (tmp_path / "vidsearch-index" / "catalog.sqlite").is_file()  # the default folder

    res = run("search", "a blue square", "--json", "-k", "3")
    hits = json.loads(res.output)
    assert len(hits) == 1 and hits[0]["kind"] == "video"
    assert hits[0]["path"] == str(path) and hits[0]["source"] == "shapes.mp4"
    assert 3 <= hits[0]["t"] < 6 and (hits[0]["start"], hits[0]["end"]) == (3, 6) and not hits[0]["weak"]
    everything = json.loads(run("search", "a blue square", "--json", "--min-score", "-1", "--per-video", "0").output)
    assert everything[0] == hits[0] and sorted((h["start"], h["end"]) for h in everything)[-1][1] == 12
    weak = json.loads(run("search", "a blue square", "--json", "--min-score", "0.99").output)
    assert len(weak) == 2 and all(h["weak"] for h in weak)
    text = run("search", "a blue square", "-k", "1").output
    assert "0:03–0:06" in text and str(path) in text
    assert "No good match" in run("search", "a purple triangle").output
    like = json.loads(run("search", "--like", hits[0]["frame_id"], "--json").output)
    assert (like[0]["start"], like[0]["end"]) == (hits[0]["start"], hits[0]["end"])  # its own moment first

    info = json.loads(run("info", "--json").output)
    assert info["model"] == tiny_model and info["pretrained"] == "" and info["interval"] == 1.0
    config = json.loads(Path(tiny_model[len("local-dir:"):], "open_clip_config.json").read_text())
    assert info["min_score"] == config["vidsearch_min_score"]  # measured for the test model by its training script
    assert (info["sources"], info["frames"], info["skipped"]) == (1, 12, 1)
    assert info["skipped_files"][0]["path"].endswith("broken.mp4") and info["size_bytes"] > 0
    assert "12 frames" in run("info").output


def test_index_env_var_and_refusals(run, tmp_path, tiny_model, monkeypatch):
    segments_video(tmp_path / "m" / "a.mp4", [(2, "circle", "red")])
    monkeypatch.setenv("VIDSEARCH_INDEX", str(tmp_path / "elsewhere"))
    assert run("index", "m", "--model", tiny_model, "--interval", "0.5").exit_code == 0
    assert json.loads(run("info", "--json").output)["frames"] == 4
    res = run("index", "m", "--model", "ViT-B-32")
    assert res.exit_code == 2 and "another model" in res.output
    res = run("index", "m", "--interval", "1")
    assert res.exit_code == 2 and "interval" in res.output
    assert run("search").exit_code == 2


def test_nothing_readable_exits_non_zero(run, tmp_path, tiny_model):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.mp4").write_text("not a video")
    res = run("index", "junk", "--model", tiny_model)
    assert res.exit_code == 1 and "nothing could be indexed" in res.output


def test_search_without_an_index_says_so(run):
    res = run("search", "a cat")
    assert res.exit_code == 2 and "No vidsearch index" in res.output


def test_missing_weights_one_sentence_exit_2(tmp_path):
    segments_video(tmp_path / "m" / "a.mp4", [(1, "circle", "red")])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([sys.executable, "-m", "vidsearch.cli", "index", "m"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "ViT-B-32" in lines[0] and "local-dir:PATH" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "vidsearch-index").exists()


def catalog(index_dir):
    db = sqlite3.connect(index_dir / "catalog.sqlite")
    try:
        rows = db.execute("SELECT s.path, f.t, f.vector FROM frames f JOIN sources s ON s.id = f.source_id "
                          "ORDER BY s.path, f.t").fetchall()
        return [(p, t) for p, t, _ in rows], np.stack([np.frombuffer(v, np.float32) for _, _, v in rows])
    finally:
        db.close()


def test_sigkill_mid_run_leaves_an_index_that_opens_and_a_rerun_completes_it(tmp_path, tiny_model):
    media = tmp_path / "media"
    for i, colour in enumerate(["red", "green", "blue", "yellow"]):
        segments_video(media / f"{i}_short.mp4", [(2, "circle", colour)])
    # A long video keeps the run busy for seconds after the first sources are committed, even on a loaded machine.
    subprocess.run([FFMPEG, "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30:duration=120",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(media / "9_long.mp4")],
                   check=True)
    cmd = [sys.executable, "-m", "vidsearch.cli", "index", str(media), "--model", tiny_model]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd + ["--index", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            db = sqlite3.connect(f"file:{killed / 'catalog.sqlite'}?mode=ro", uri=True)
            n = db.execute("SELECT count(*) FROM sources").fetchone()[0]
            db.close()
            if n >= 1:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.05)  # polling interval only; no assertion depends on timing
    assert proc.poll() is None, "the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL

    import vidsearch
    interrupted = vidsearch.Index(killed)
    assert 1 <= interrupted.stats().sources < 5
    assert interrupted.search("something red", k=1)  # opens and searches
    interrupted.close()

    assert subprocess.run(cmd + ["--index", str(killed)], capture_output=True).returncode == 0
    clean = tmp_path / "clean"
    assert subprocess.run(cmd + ["--index", str(clean)], capture_output=True).returncode == 0
    (rows_k, vecs_k), (rows_c, vecs_c) = catalog(killed), catalog(clean)
    assert rows_k == rows_c and len(rows_k) == len(set(rows_k))
    assert np.allclose(vecs_k, vecs_c, atol=1e-5)
    again = vidsearch.Index(killed)
    assert again.search("something red", k=1)[0].source == str(media / "0_short.mp4")
    assert not any((killed / "thumbs" / "staging").iterdir())  # what the killed run staged is gone
    from vidsearch.store import thumb_path
    db = sqlite3.connect(killed / "catalog.sqlite")
    assert all(thumb_path(killed, fid).is_file() for (fid,) in db.execute("SELECT id FROM frames"))
    db.close()
