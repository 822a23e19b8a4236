"""Open one media file and sample its frames as RGB arrays with their presentation times."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator

import av
import cv2
import numpy as np
from PIL import Image, ImageOps

from ..errors import MediaError
from ..preprocess import reduce_to

# Thumbnails' long side. The model's input is made from the decoded frame, which keeps more pixels (`side`).
THUMB_SIDE = 320
# Packets held while looking for the next keyframe: 20 s at 30 fps; past that the group is decoded as it comes.
MAX_GROUP = 600


UNREADABLE = "not a readable image or video (unknown format, or the file is damaged)"


@dataclass
class MediaInfo:
    kind: str  # "video" or "image"
    width: int
    height: int
    fps: float = 0.0
    duration: float = 0.0  # seconds; known for videos once every frame has been read


@dataclass
class Frame:
    t: float  # presentation time in seconds (0 for images)
    rgb: np.ndarray  # HxWx3 uint8, shortest side at most the `side` asked for


def shrink(rgb: np.ndarray, max_side: int = THUMB_SIDE) -> np.ndarray:
    """The picture with its long side at most `max_side` (a thumbnail)."""
    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)


def to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is flattened onto white, 16/32-bit greys are rescaled."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # Pillow's own conversion clips these to 0..255 (a 16-bit photo turns white), so scale by the range.
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(a / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    return im.convert("RGB") if im.mode != "RGB" else im


def picture_rgb(im: Image.Image, side: int) -> np.ndarray:
    """A still picture as it is meant to be seen (EXIF orientation applied, RGB), shortest side at most `side`."""
    # JPEG decodes straight to a fraction of its size (DCT scaling), never below `side` on either axis: a
    # 24-megapixel photo costs far less.
    im.draft("RGB", (side, side))
    rgb = reduce_to(np.asarray(to_rgb(ImageOps.exif_transpose(im)), dtype=np.uint8), side)
    return np.ascontiguousarray(rgb)


class _Image:
    def __init__(self, path: str, im: Image.Image):
        self.path = path
        self._im = im
        w, h = im.size
        try:  # reading EXIF can mean decoding the whole file (PNG keeps it after the pixels)
            orientation = im.getexif().get(0x0112, 1)
        except Exception as e:
            raise MediaError(f"image could not be decoded ({e})") from None
        if orientation in (5, 6, 7, 8):  # EXIF orientations that swap width and height
            w, h = h, w
        self.info = MediaInfo("image", w, h)

    def frames(self, interval: float, side: int) -> Iterator[Frame]:
        try:
            rgb = picture_rgb(self._im, side)
        except Image.DecompressionBombError as e:
            raise MediaError(f"image too large to open safely ({e})") from None
        except (OSError, ValueError, SyntaxError) as e:
            raise MediaError(f"image could not be decoded ({e})") from None
        yield Frame(0.0, rgb)

    def close(self) -> None:
        self._im.close()


class _Video:
    """A video read with PyAV (FFmpeg), decoding only what the sampled frames need.

    Packets are read one group of pictures (keyframe to keyframe) at a time. A group that holds no mark is
    never decoded, and decoding stops at the last mark inside a group. Frames are converted only at
    marks, scaled down in the same FFmpeg pass to the `side` the model's preprocessing needs.
    """

    def __init__(self, path: str, container):
        self.path = path
        self._container = container
        self._stream = container.streams.video[0]
        ctx = self._stream.codec_context
        rate = self._stream.average_rate or self._stream.guessed_rate
        fps = float(rate) if rate else 0.0
        self.info = MediaInfo("video", ctx.width, ctx.height, fps if math.isfinite(fps) and fps > 0 else 0.0)

    def frames(self, interval: float, side: int) -> Iterator[Frame]:
        stream = self._stream
        stream.thread_type = "AUTO"
        tb = float(stream.time_base or 0) or 1 / 90000
        start = stream.start_time or 0
        eps = 1e-3
        frame_dur = 1.0 / self.info.fps if self.info.fps else 0.0
        state = {"next": 0.0, "n": 0, "end": 0.0}

        def take(frames) -> Iterator[Frame]:
            for fr in frames:
                if fr.pts is None:
                    continue
                t = max((fr.pts - start) * tb, 0.0)
                if t + eps < state["next"]:
                    continue
                rgb = self._to_rgb(fr, side)
                if state["n"] == 0:  # its size is what a viewer sees, rotation applied
                    self.info.height, self.info.width = _display_size(fr)
                state["n"] += 1
                yield Frame(t, rgb)
                state["next"] = (math.floor((t + eps) / interval) + 1) * interval

        def decode(packets, until: float | None) -> Iterator[Frame]:
            """Decode `packets` in order, stopping once every mark before `until` (seconds) has its frame."""
            for p in packets:
                if until is not None and state["next"] >= until:
                    return
                try:
                    frames = stream.codec_context.decode(p)
                except av.FFmpegError:
                    continue  # a damaged packet: the frames around it still count
                yield from take(frames)

        group: list = []
        try:
            for p in self._container.demux(stream):
                when = p.pts if p.pts is not None else p.dts
                if when is not None:  # the duration comes from the packets: the last frames may never be decoded
                    last = (when - start) * tb + (p.duration * tb if p.duration else frame_dur)
                    state["end"] = max(state["end"], last)
                if p.size == 0:
                    continue
                if p.is_keyframe and group and when is not None:
                    yield from decode(group, (when - start) * tb)
                    group = []
                elif len(group) >= MAX_GROUP:  # a stream with few keyframes: bound what waits in memory
                    yield from decode(group, None)
                    group = []
                group.append(p)
        except av.FFmpegError:
            pass  # a truncated or damaged file: keep what was read before the damage
        yield from decode(group, None)
        try:
            yield from take(stream.codec_context.decode(None))
        except av.FFmpegError:
            pass
        if state["n"] == 0:
            raise MediaError(UNREADABLE)
        self.info.duration = state["end"]

    @staticmethod
    def _to_rgb(fr, side: int) -> np.ndarray:
        # Scaled and converted in one FFmpeg pass, straight to the size the model's preprocessing needs.
        h, w = fr.height, fr.width
        scale = min(1.0, side / min(h, w))
        rgb = fr.to_ndarray(format="rgb24", width=max(1, round(w * scale)), height=max(1, round(h * scale)),
                            interpolation="AREA")
        turns = round(_rotation(fr) / 90) % 4
        return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb

    def close(self) -> None:
        self._container.close()


def _rotation(fr) -> float:
    """Degrees counter-clockwise that the display matrix turns the picture by (0 when there is none)."""
    return float(getattr(fr, "rotation", 0) or 0)


def _display_size(fr) -> tuple[int, int]:
    h, w = fr.height, fr.width
    return (w, h) if round(_rotation(fr) / 90) % 2 else (h, w)


def open_media(path: str) -> _Image | _Video:
    """Open an image or a video, whatever its extension says; raise MediaError with the reason if neither."""
    if not os.access(path, os.R_OK):
        raise MediaError("permission denied" if os.path.exists(path) else "file not found")
    if os.path.getsize(path) == 0:
        raise MediaError("empty file")
    try:
        im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise MediaError(f"image too large to open safely ({e})") from None
    except Exception:
        im = None
    if im is not None:
        return _Image(path, im)
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.FFmpegError:
        raise MediaError(UNREADABLE) from None
    if not container.streams.video:
        container.close()
        raise MediaError("no video stream (an audio file?)")
    return _Video(path, container)
