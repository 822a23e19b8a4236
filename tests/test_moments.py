"""Moments, composed queries and honest relevance, with the tiny test model."""
import pytest
from media import draw, segments_video
from PIL import Image

import vidsearch


@pytest.fixture(scope="module")
def library(tmp_path_factory, tiny_model):
    media = tmp_path_factory.mktemp("media")
    repeated = segments_video(media / "repeated.mp4", [(4, "circle", "red"), (4, "square", "blue"),
                                                       (2, "circle", "red")])
    circles = segments_video(media / "circles.mp4", [(3, "circle", "red"), (3, "square", "yellow"),
                                                     (3, "circle", "green"), (3, "square", "yellow"),
                                                     (3, "circle", "blue")])
    many = segments_video(media / "many.mp4", [(2, "circle" if i % 2 == 0 else "square",
                                                "red" if i % 2 == 0 else "yellow") for i in range(10)])
    Image.fromarray(draw("square", "blue", (200, 200))).save(media / "blue_square.png")
    idx = vidsearch.Index(tmp_path_factory.mktemp("idx") / "index", model=tiny_model)
    idx.add([media])
    return idx, repeated, circles, many, media / "blue_square.png"


def moments(hits, path):
    return sorted((h.start, h.end) for h in hits if h.source == str(path))


def test_a_repeated_segment_gives_exactly_two_moments(library):
    idx, repeated, *_ = library
    hits = idx.search("a red circle", k=20, per_video=0)
    assert moments(hits, repeated) == [(0, 4), (8, 10)]  # bounds within one 1 s interval: exact here
    hit = next(h for h in hits if h.source == str(repeated) and h.start == 8)
    assert 8 <= hit.t < 10 and hit.kind == "video"


def test_a_negative_text_removes_what_it_names(library):
    idx, _, circles, *_ = library
    plain = moments(idx.search("a circle", k=20, per_video=0), circles)
    assert (0, 3) in plain  # the red circle matches "a circle"
    without_red = idx.search("a circle", negative="something red", k=20, per_video=0)
    assert moments(without_red, circles) == [(6, 9), (12, 15)]
    assert all("red" not in h.source for h in without_red)


def test_weights_shift_the_ranking(library):
    idx, repeated, _, _, blue_png = library
    text_heavy = idx.search("something red", image=blue_png, w_text=1.0, w_image=0.2, k=1, min_score=-1)[0]
    image_heavy = idx.search("something red", image=blue_png, w_text=0.2, w_image=1.0, k=1, min_score=-1)[0]
    assert text_heavy.start in (0, 8) or "circles" in text_heavy.source  # a red moment
    assert image_heavy.source == str(blue_png) or (image_heavy.start, image_heavy.end) == (4, 8)


def test_more_like_this_returns_its_own_moment_first(library):
    idx, repeated, *_ = library
    blue = next(h for h in idx.search("a blue square", k=10) if h.source == str(repeated))
    again = idx.search(like=blue.frame_id, k=3)[0]
    assert (again.source, again.start, again.end) == (blue.source, blue.start, blue.end)


def test_no_good_match_says_so(library):
    idx, *_ = library
    hits = idx.search("a purple triangle", k=10)
    assert 1 <= len(hits) <= 2 and all(h.weak for h in hits)
    assert all(h.score < idx.min_score for h in hits)
    assert not any(h.weak for h in idx.search("a yellow square", k=10))


def test_at_most_three_moments_per_video_on_the_first_page(library):
    idx, _, _, many, _ = library
    capped = idx.search("a red circle", k=10)
    assert len(moments(capped, many)) == 3
    everything = idx.search("a red circle", k=20, per_video=0)
    assert moments(everything, many) == [(0, 2), (4, 6), (8, 10), (12, 14), (16, 18)]
    assert len(moments(idx.search("a red circle", k=10, per_video=1), many)) == 1


def test_a_video_timeline_has_every_sample_and_moment(library):
    idx, repeated, *_ = library
    source_id = next(s.id for s in idx.sources() if s.path == str(repeated))
    samples, found = idx.video(source_id, "a red circle")
    assert [t for t, _ in samples] == [float(i) for i in range(10)]
    assert sorted((h.start, h.end) for h in found) == [(0, 4), (8, 10)]
    assert min(s for _, s in samples[:4]) > max(s for _, s in samples[4:8])
