"""Where a frame is sampled: one file -> its samples, the same for the local decode threads and the Ray workers.

    open --> decode a frame every `interval` s (extract.frames) --> change gate (extract.change) -->
    Sample(time, model input or None to reuse the last vector, JPEG thumbnail, pixel signature)... --> Done

`Producer.samples` runs in whatever thread decodes (a local decode thread, a Ray worker's prefetch thread): every
step here is CPU work on one frame, so the embedder's thread only batches and embeds. The file's end is a Done
with its MediaInfo, or with the reason it cannot be indexed: a decoding error, or the file deleted or changed
while it was read (plan.vanished), checked after the last frame so that a file changed mid-read is never
committed with frames of two versions.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from ..errors import MediaError
from ..extract import Candidate, MediaInfo, open_media
from ..extract.change import ChangeGate
from ..extract.pixels import pixel_signature
from .plan import vanished
from .thumbnails import thumbnail_jpeg


@dataclass
class Sample:
    t: float
    square: np.ndarray | None  # the model's input; None: unchanged since the file's last embedded sample
    jpeg: bytes  # its thumbnail
    pixels: bytes  # its pixel signature (extract.pixels): tells another encoding of the same content
    rgb: np.ndarray | None  # the decoded frame, when the producer keeps frames (to read their text)


@dataclass
class Done:
    info: MediaInfo | None  # None when the file cannot be indexed
    reason: str = ""


class Producer:
    """Samples files for one model: `prepare` is the model's picture -> input step (Embedder.prepare), `side`
    the shortest side frames are decoded at (Embedder.decode_side, or more to read text). `keep_frames`: each
    Sample holds its decoded frame too (memory: only for a caller that uses it at once)."""

    def __init__(self, prepare: Callable[[np.ndarray], np.ndarray], side: int, interval: float, reuse: bool = True,
                 keep_frames: bool = False):
        self.prepare, self.side, self.interval, self.reuse = prepare, side, interval, reuse
        self.keep_frames = keep_frames

    def samples(self, cand: Candidate, opener: Callable[[str], object] = open_media) -> Iterator[Sample | Done]:
        """`cand`'s samples, then Done. `opener` opens the file (open_media; the local path times it)."""
        try:
            media = opener(cand.path)
            with contextlib.closing(media):
                yield from self._decode(media)
            gone = vanished(cand)
            yield Done(media.info) if gone is None else Done(None, gone)
        except MediaError as e:
            yield Done(None, vanished(cand) or str(e))
        except Exception as e:  # noqa: BLE001 - a decoder bug on one file must not end the run
            yield Done(None, vanished(cand) or f"{type(e).__name__}: {e}")

    def _decode(self, media) -> Iterator[Sample]:
        gate = ChangeGate(enabled=self.reuse)
        for fr in media.frames(self.interval, self.side):
            square = None if gate.unchanged(fr.rgb) else self.prepare(fr.rgb)
            yield Sample(fr.t, square, thumbnail_jpeg(fr.rgb), pixel_signature(fr.rgb),
                         fr.rgb if self.keep_frames else None)
