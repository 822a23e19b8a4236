"""Pixel signatures: whether two videos are one content in two encodings, told from their pixels, not a model.

Each sample keeps a tiny greyscale picture of its frame (COLS x ROWS cells, area-averaged, whatever the frame's
shape). Two videos are encodings of one content when, at aligned times, their samples' signatures differ only by
codec noise. Brightness is normalised first (each signature less its mean: a re-encode may shift levels), then a
sample pair's difference is the largest absolute cell difference: codec noise moves every cell a little, whereas
a person walking in a fixed camera's view moves a few cells a lot. Chosen by measurement (benchmarks/pixels.py):
see SAME_CELL.
"""
from __future__ import annotations

import cv2
import numpy as np

COLS, ROWS = 32, 18
# Largest cell difference (grey levels, brightness normalised) of two samples taken for the same frame. Measured
# (benchmarks/pixels.py, decoded at 128 and 448 px): re-encodes as MPEG-2 .mpg, MPEG-4 part 2 .avi and half-size
# H.264 CRF 32 of generated videos and of the five in /work/shared/media reached at most 17.9 in any sample, but
# 27.9 for a 176x144 video halved to 88x72; different videos of one length never had 90 % of samples within 48
# (at most 20 % within 32), and the two halves of a 79 s fixed-camera recording of people walking differed by 125
# or more in 90 % of their aligned samples (none within 48).
SAME_CELL = 32.0
# Share of aligned samples that must be the same frame.
SAME_SHARE = 0.9


def pixel_signature(rgb: np.ndarray) -> bytes:
    """COLS x ROWS grey cells of a frame, as bytes (COLS * ROWS)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (COLS, ROWS), interpolation=cv2.INTER_AREA).tobytes()


def cell_differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per sample pair (rows of `a` and `b`, signatures as uint8 arrays): the largest cell difference after
    brightness is normalised."""
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    fa -= fa.mean(axis=1, keepdims=True)
    fb -= fb.mean(axis=1, keepdims=True)
    return np.abs(fa - fb).max(axis=1)


def same_frame(a: np.ndarray | bytes, b: np.ndarray | bytes) -> bool:
    """Whether two signatures (uint8 arrays or bytes) are the same frame but for codec noise."""
    pair = np.stack([np.frombuffer(x, np.uint8) if isinstance(x, bytes) else x for x in (a, b)])
    return bool(cell_differences(pair[:1], pair[1:])[0] <= SAME_CELL)


def aligned(ta: np.ndarray, tb: np.ndarray, interval: float) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of samples of two videos within half an interval of each other."""
    if not len(ta) or not len(tb):
        return np.empty(0, int), np.empty(0, int)
    j = np.clip(np.searchsorted(tb, ta), 1, len(tb) - 1) if len(tb) > 1 else np.zeros(len(ta), int)
    if len(tb) > 1:
        j = np.where(np.abs(tb[j - 1] - ta) <= np.abs(tb[j] - ta), j - 1, j)
    near = np.abs(tb[j] - ta) <= interval / 2
    return np.flatnonzero(near), j[near]


def same_content(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], interval: float) -> bool:
    """Whether two videos, each (sample times, signatures as an N x COLS*ROWS uint8 array), are one content: at
    least SAME_SHARE of the samples of the longer align with one of the other that shows the same frame."""
    (ta, sa), (tb, sb) = a, b
    i, j = aligned(ta, tb, interval)
    if not len(i):
        return False
    same = int((cell_differences(sa[i], sb[j]) <= SAME_CELL).sum())
    return same >= SAME_SHARE * max(len(ta), len(tb))
