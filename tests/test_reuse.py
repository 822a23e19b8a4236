"""Change-aware embedding in the indexing pipeline: a sample unchanged since its video's last embedded one reuses
that vector, counted apart; the moments found are those of embedding every sample."""
import numpy as np
import pytest
from media import draw, encode, segments_video

import vidsearch


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    lib = tmp_path_factory.mktemp("reuse")
    # Still shots with cuts: 4 slides of 3 s, each a still picture with sensor noise.
    rng = np.random.default_rng(0)
    frames = []
    for shape, colour in [("circle", "red"), ("square", "blue"), ("triangle", "green"), ("circle", "yellow")]:
        still = draw(shape, colour).astype(np.int16)
        frames += [np.clip(still + rng.normal(0, 3, still.shape), 0, 255).astype(np.uint8) for _ in range(75)]
    encode(lib / "slides.mp4", frames, fps=25)
    # Always changing: a shape that moves across the frame and changes colour every second.
    moving = [np.roll(draw("square", c), 20 * i, axis=1) for i, c in enumerate(
        ["red", "blue", "green", "yellow", "purple", "orange"]) for _ in range(25)]
    encode(lib / "moving.mp4", moving, fps=25)
    segments_video(lib / "plain.mp4", [(2, "circle", "purple")])
    return lib


@pytest.fixture(scope="module")
def both(library, tiny_model, tmp_path_factory):
    root = tmp_path_factory.mktemp("indexes")
    reused, full = vidsearch.Index(root / "reused", model=tiny_model), vidsearch.Index(root / "full", model=tiny_model)
    report = reused.add([library])
    full_report = full.add([library], reuse=False)
    yield reused, report, full, full_report
    reused.close()
    full.close()


def test_still_shots_reuse_vectors_and_changing_footage_does_not(both, library):
    reused, report, full, full_report = both
    assert report.frames_added == full_report.frames_added == 12 + 6 + 2
    assert full_report.frames_embedded == full_report.frames_added  # turned off: every sample embedded
    by_path = {s.path: s for s in reused.sources()}
    slides = reused.frames(by_path[str(library / "slides.mp4")].id)
    moving = reused.frames(by_path[str(library / "moving.mp4")].id)
    distinct = lambda vecs: len({v.tobytes() for v in vecs})  # noqa: E731
    assert distinct(slides[2]) == 4  # one model pass per slide, reused for its other samples
    assert distinct(moving[2]) == 6  # every changing sample embedded
    assert report.frames_embedded == 4 + 6 + 1
    assert reused.stats().last_run["frames_embedded"] == report.frames_embedded


def test_reused_vectors_stay_within_the_bound_of_the_models_own(both, library):
    reused, _, full, _ = both
    for path in ("slides.mp4", "moving.mp4", "plain.mp4"):
        a = next(s for s in reused.sources() if s.path.endswith(path))
        b = next(s for s in full.sources() if s.path.endswith(path))
        va, vb = reused.frames(a.id)[2], full.frames(b.id)[2]
        assert np.sum(va * vb, axis=1).min() >= 0.99, path


@pytest.mark.parametrize("query", ["a red circle", "a blue square", "a green triangle", "a yellow circle",
                                   "something purple", "a square"])
def test_the_moments_found_are_those_of_full_embedding(both, query):
    reused, _, full, _ = both
    a = [(h.source, h.start, h.end) for h in reused.search(query, k=10)]
    b = [(h.source, h.start, h.end) for h in full.search(query, k=10)]
    assert len(a) == len(b)
    for (sa, start_a, end_a), (sb, start_b, end_b) in zip(a, b):
        assert sa == sb and abs(start_a - start_b) <= 1 and abs(end_a - end_b) <= 1
