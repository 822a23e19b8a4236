"""Tell whether a sampled frame can differ meaningfully from the last embedded sample of the same source.

A still shot (a slide, a screencast, a fixed camera with nothing moving) gives the same picture every second, give
or take sensor and codec noise; its vector need not be computed again. `ChangeGate` compares each sample with the
last sample that was embedded (never with the previous sample: slow drift adds up and is caught) and calls it
unchanged only when all three of these stay within their bounds:

- shift: the CIELAB colour difference (delta E) of the whole frame's mean colour. The models tried react most to
  a change of the whole picture's colour or brightness (a white balance or exposure change): delta E 2.3 of the
  whole frame moved the test model's vector to cosine 0.988.
- tile: the largest delta E of a tile's mean colour, the frame cut into 8 x 8 tiles. The largest, not the mean:
  an object entering a quarter of the frame changes a quarter of the tiles completely. Colour, not grey: a hue
  change at equal brightness counts.
- detail: the largest, over the same tiles, mean excess of the grey difference over a dead zone of 16 levels, on a
  grey picture 128 pixels on its short side (a slide whose text changes moves few pixels by many levels; noise
  moves every pixel by a few).

Tile means average noise away and the dead zone holds it back, so noise alone passes; how far each bound sits
from noise and from the smallest meaningful changes is measured by benchmarks/change.py (`--sweep`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

# The grey picture compared pixel by pixel has this many pixels on its short side (when the frame has as many).
DETAIL_SIDE = 128
# The frame is cut into GRID x GRID tiles.
GRID = 8
# Grey differences up to this many levels (of 255) are taken for noise and not counted as detail.
DEAD_ZONE = 16


@dataclass(frozen=True)
class Thresholds:
    """Largest differences a sample may show and still reuse the last embedded vector (see the module's text).

    Chosen by measurement (benchmarks/change.py --sweep: 720p H.264 at 8, 2 and 1 Mbit/s and CRF 38, MPEG-4 part
    2, MJPEG, with and without sensor noise; real clips): noise alone gave at most shift 0.91, tile 2.05, detail
    0.004 in the generated footage (sensor noise up to ffmpeg's strength 20, 8 Mbit/s), and shift 1.43, tile
    4.12, detail 0.23 with heavy blotchy noise at 2 Mbit/s (a few of those samples are embedded again). One word
    of 11-pixel print replaced on a slide gave detail 0.55 or more; a whole-frame colour shift that moved the test
    model's vector below cosine 0.99 gave shift 2.3 or more. No change these bounds let through moved a vector
    below cosine 0.995 (test model) or 0.998 (random-weight ViT-B-32)."""
    shift: float = 1.5
    tile: float = 4.0
    detail: float = 0.35


class Difference(NamedTuple):
    shift: float  # delta E of the frame's mean colour
    tile: float  # largest delta E of a tile's mean colour
    detail: float  # largest mean excess of a tile's grey difference over DEAD_ZONE, in grey levels

    def within(self, t: Thresholds) -> bool:
        return self.shift <= t.shift and self.tile <= t.tile and self.detail <= t.detail


@dataclass(frozen=True)
class Signature:
    size: tuple[int, int]  # (height, width) of the frame it was made from
    lab: np.ndarray  # GRID x GRID x 3 float32: each tile's mean colour in CIELAB
    grey: np.ndarray  # uint8 grey picture, DETAIL_SIDE on its short side (or the frame's own size if smaller)


def signature(rgb: np.ndarray) -> Signature:
    """What a frame is compared by: about 1.2 ms of CPU for a 796x448 frame."""
    h, w = rgb.shape[:2]
    scale = min(1.0, DETAIL_SIDE / min(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if size != (w, h) else rgb
    # Tile means in float (uint8 means would be rounded: +-1 level of a saturated blue is delta E 1.5).
    means = cv2.resize(small.astype(np.float32) * (1 / 255), (GRID, GRID), interpolation=cv2.INTER_AREA)
    return Signature((h, w), cv2.cvtColor(means, cv2.COLOR_RGB2Lab), cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))


def difference(a: Signature, b: Signature) -> Difference:
    """How far apart two frames' signatures are; infinite for frames of different sizes."""
    if a.size != b.size or a.grey.shape != b.grey.shape:
        return Difference(float("inf"), float("inf"), float("inf"))
    d = a.lab - b.lab
    shift = float(np.linalg.norm(d.reshape(-1, 3).mean(axis=0)))
    tile = float(np.sqrt((d * d).sum(axis=2)).max())
    excess = cv2.subtract(cv2.absdiff(a.grey, b.grey), DEAD_ZONE)  # saturates at 0
    detail = float(cv2.resize(excess.astype(np.float32), (GRID, GRID), interpolation=cv2.INTER_AREA).max())
    return Difference(shift, tile, detail)


class ChangeGate:
    """Decides, sample by sample of one source, whether a sample may reuse the last embedded vector.

        gate = ChangeGate()            # one per source, fed its samples in order
        for frame in media.frames(...):
            if gate.unchanged(frame.rgb):
                vector = last_vector   # no model pass; the sample keeps its own time
            else:
                vector = last_vector = embed(frame.rgb)

    A sample found changed becomes the reference the next ones are compared with, so the caller must embed every
    sample for which `unchanged` is False (or call `reset` if it could not). `enabled=False` embeds everything.
    """

    def __init__(self, thresholds: Thresholds | None = None, enabled: bool = True):
        self.thresholds = thresholds or Thresholds()
        self.enabled = enabled
        self.sampled = 0  # samples seen
        self.reused = 0  # of which found unchanged
        self._ref: Signature | None = None

    def unchanged(self, rgb: np.ndarray) -> bool:
        """True when `rgb` cannot differ meaningfully from the last sample this returned False for."""
        self.sampled += 1
        if not self.enabled:
            return False
        sig = signature(rgb)
        if self._ref is not None and difference(sig, self._ref).within(self.thresholds):
            self.reused += 1
            return True
        self._ref = sig
        return False

    def reset(self) -> None:
        """Forget the reference: the next sample is embedded (a new source, or the last embedding failed)."""
        self._ref = None
