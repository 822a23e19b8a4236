"""Less work per sample: the change gate (meaningful changes are embedded again, noise alone is not, reused vectors
stay close to the model's) and the decoder shortcuts of frames.py (the samples stay the frames a full decode shows
at the marks)."""
import cv2
import numpy as np
import pytest
from media import encode

from vidsearch.embed import Embedder
from vidsearch.extract import open_media
from vidsearch.extract.change import ChangeGate, Thresholds, difference, signature

W, H = 640, 360


def scene(seed: int = 0, w: int = W, h: int = H) -> np.ndarray:
    """A still shot: smooth colour fields, a few shapes, a line of text."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.integers(40, 220, (5, 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(5):
        centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        cv2.circle(img, centre, int(rng.integers(10, h // 4)), colour, -1, cv2.LINE_AA)
    cv2.putText(img, "a still shot", (20, h - 20), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (20, 20, 20), 2, cv2.LINE_AA)
    return img


def noisy(img: np.ndarray, seed: int, sigma: float = 6.0) -> np.ndarray:
    """Sensor noise: a fresh draw for every frame."""
    rng = np.random.default_rng(seed)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def changed(before: np.ndarray, after: np.ndarray) -> bool:
    gate = ChangeGate()
    assert not gate.unchanged(noisy(before, 1))  # the first sample is always embedded
    return not gate.unchanged(noisy(after, 2))


def slide(words: list[str]) -> np.ndarray:
    img = np.full((H, W, 3), 250, np.uint8)
    cv2.rectangle(img, (0, 0), (W, 55), (40, 70, 160), -1)
    for i, line in enumerate(words):
        cv2.putText(img, line, (40, 100 + 30 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
    return img


def lightness(rgb) -> float:
    return float(cv2.cvtColor(np.array([[rgb]], np.float32) / 255, cv2.COLOR_RGB2Lab)[0, 0, 0])


def test_noise_alone_is_unchanged():
    still = scene()
    gate = ChangeGate()
    assert [gate.unchanged(noisy(still, i)) for i in range(10)] == [False] + [True] * 9
    assert (gate.sampled, gate.reused) == (10, 9)


def test_an_object_entering_a_quarter_of_the_frame_is_a_change():
    still = scene()
    after = still.copy()
    cv2.rectangle(after, (W // 2 + 40, H // 2 + 20), (W // 2 + 120, H - 10), (90, 60, 50), -1)  # in one quarter
    assert changed(still, after)


def test_a_colour_change_at_equal_brightness_is_a_change():
    red = (200, 60, 50)
    # The green of the same CIELAB lightness: the grey picture barely changes, the colour does.
    green = min(((int(40 * k), int(160 * k), int(60 * k)) for k in np.linspace(0.3, 1.5, 500)),
                key=lambda c: abs(lightness(c) - lightness(red)))
    before, after = slide(["Two shapes"]), slide(["Two shapes"])
    cv2.circle(before, (450, 220), 60, red, -1, cv2.LINE_AA)
    cv2.circle(after, (450, 220), 60, green, -1, cv2.LINE_AA)
    d = difference(signature(before), signature(after))
    assert d.detail <= Thresholds().detail and d.tile > Thresholds().tile  # the grey pictures alone would not tell
    assert changed(before, after)


def test_a_slide_whose_text_changes_is_a_change():
    lines = ["Keyframes every 1.5 seconds", "Non-reference frames are skipped", "Threads: one per core"]
    assert changed(slide(lines), slide(["Keyframes every 2.0 seconds", *lines[1:]]))  # one word of small print
    assert changed(slide(lines[:2]), slide(lines))  # a bullet appears


def test_a_cut_to_a_similar_shot_is_a_change():
    wide = scene(3, int(W * 1.2), int(H * 1.2))
    shot = wide[:H, :W]
    similar = cv2.resize(wide[: int(H * 1.1), : int(W * 1.1)], (W, H), interpolation=cv2.INTER_AREA)  # 10 % closer
    assert changed(shot, similar)
    assert changed(shot, wide[10:10 + H, 8:8 + W])  # the camera moved a little


def test_a_slow_drift_is_caught_against_the_last_embedded_sample():
    still = scene()
    gate = ChangeGate()
    embedded = []
    for i in range(12):  # brightness creeps up by 1 level a second: no step is a change, the sum is
        embedded.append(not gate.unchanged(np.clip(still.astype(int) + i, 0, 255).astype(np.uint8)))
    assert embedded[0] and not all(embedded[1:4]) and sum(embedded) >= 2


def test_other_sizes_reset_and_off():
    still = scene()
    gate = ChangeGate()
    assert not gate.unchanged(still)
    assert not gate.unchanged(cv2.resize(still, (W // 2, H // 2)))  # another size: never the same picture
    gate.reset()
    assert not gate.unchanged(cv2.resize(still, (W // 2, H // 2)))
    off = ChangeGate(enabled=False)
    assert [off.unchanged(still) for _ in range(3)] == [False] * 3
    d = difference(signature(still), signature(still))
    assert d == (0.0, 0.0, 0.0) and d.within(Thresholds())


@pytest.mark.parametrize("quality", [["-crf", "23"], ["-crf", "35"]])
def test_still_noisy_footage_reuses_vectors_close_to_the_models(tmp_path, tiny_model, quality):
    """A still shot filmed with sensor noise, through H.264 (codec noise): after the first sample every vector is
    reused, and each reused vector is within cosine 0.99 of the one the test model gives for that sample."""
    still = scene(5)
    path = encode(tmp_path / "still.mp4", (noisy(still, i, 8) for i in range(25 * 8)), fps=25, size=(W, H),
                  extra=quality)
    embedder = Embedder(tiny_model)
    media = open_media(str(path))
    try:
        rgbs = [f.rgb for f in media.frames(1.0, embedder.decode_side)]
    finally:
        media.close()
    gate = ChangeGate()
    reused = [gate.unchanged(x) for x in rgbs]
    assert len(rgbs) == 8 and reused == [False] + [True] * 7
    vecs = embedder.encode_images(rgbs)
    cos = vecs[1:] @ vecs[0]  # every sample reuses the first one's vector
    assert cos.min() >= 0.99, cos


# -- Decoding less (vidsearch/extract/frames.py) must not change what is sampled ------------------------------

def moving(n: int, w: int = 320, h: int = 180) -> list:
    """Frames that all differ: a square crossing a noisy background, so a wrong frame shows."""
    rng = np.random.default_rng(0)
    back = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    out = []
    for i in range(n):
        img = back.copy()
        x = (i * 7) % (w - 40)
        img[60:100, x:x + 40] = (255, 0, 0)
        out.append(img)
    return out


@pytest.mark.parametrize("name,codec,extra", [
    ("bframes.mp4", "libx264", ["-g", "38", "-bf", "3"]),  # closed groups, B-frames (most unsampled ones skipped)
    ("open_gop.mp4", "libx264", ["-g", "38", "-bf", "3", "-x264-params", "open-gop=1"]),  # shown before the keyframe
    ("no_bframes.mkv", "libx264", ["-g", "50", "-bf", "0"]),
    ("mpeg4_bframes.avi", "mpeg4", ["-g", "38", "-bf", "2", "-q:v", "4"]),  # open groups in AVI
])
@pytest.mark.parametrize("interval", [1.0, 0.7])
def test_samples_are_the_frames_a_full_decode_shows_at_the_marks(tmp_path, name, codec, extra, interval):
    path = encode(tmp_path / name, moving(200), fps=25, codec=codec, extra=extra)  # 8 s
    import av

    with av.open(str(path)) as c:  # every frame, in order, nothing skipped
        s = c.streams.video[0]
        full = [((f.pts - (s.start_time or 0)) * float(s.time_base), f.to_ndarray(format="rgb24"))
                for f in c.decode(s)]
    expected, nxt = [], 0.0
    for t, rgb in sorted(full, key=lambda x: x[0]):
        if t + 1e-3 >= nxt:
            expected.append((t, rgb))
            nxt = (np.floor((t + 1e-3) / interval) + 1) * interval
    media = open_media(str(path))
    try:
        got = [(f.t, f.rgb) for f in media.frames(interval, 1000)]
    finally:
        media.close()
    assert [round(t, 3) for t, _ in got] == [round(t, 3) for t, _ in expected]
    for (t, a), (_, b) in zip(got, expected):
        assert np.array_equal(a, b), t
