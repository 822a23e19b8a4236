"""Open one media file and sample its frames as RGB arrays with their presentation times."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator

import cv2
import numpy as np
from PIL import Image, ImageOps

# OpenCV's own logger repeats, as warnings, failures that vidsearch reports itself with the path.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)

# Open every frame at most this big: thumbnails (320 px) and the model input (224 px for ViT-B-32) need no
# more, and small frames keep the decode→embed queue light.
MAX_SIDE = 320


UNREADABLE = "not a readable image or video (unknown format, or the file is damaged)"


class MediaError(Exception):
    """A file that cannot be indexed; str() is the reason shown to the user."""


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
    rgb: np.ndarray  # HxWx3 uint8, long side <= MAX_SIDE


def shrink(rgb: np.ndarray, max_side: int = MAX_SIDE) -> np.ndarray:
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

    def frames(self, interval: float) -> Iterator[Frame]:
        im = self._im
        try:
            # JPEG decodes straight to a fraction of its size (DCT scaling): a 24-megapixel photo costs far less.
            im.draft("RGB", (MAX_SIDE, MAX_SIDE))
            im = to_rgb(ImageOps.exif_transpose(im))
            im.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BICUBIC, reducing_gap=2.0)
            rgb = np.asarray(im, dtype=np.uint8).copy()
        except Image.DecompressionBombError as e:
            raise MediaError(f"image too large to open safely ({e})") from None
        except (OSError, ValueError, SyntaxError) as e:
            raise MediaError(f"image could not be decoded ({e})") from None
        yield Frame(0.0, rgb)

    def close(self) -> None:
        self._im.close()


class _Video:
    def __init__(self, path: str, cap: cv2.VideoCapture):
        self.path = path
        self._cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.info = MediaInfo(
            "video",
            int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
            int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
            fps if math.isfinite(fps) and fps > 0 else 0.0,
        )

    def frames(self, interval: float) -> Iterator[Frame]:
        """One frame every `interval` seconds: the first frame whose presentation time reaches each mark.

        Times are the decoder's PTS (exact for variable-frame-rate video). Frames between marks are only
        grabbed, never converted, which is most of the saving over reading every frame.
        """
        cap = self._cap
        eps = 1e-3
        next_t = 0.0
        last_t = None
        while cap.grab():
            t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
            last_t = t
            if t + eps < next_t:
                continue
            ok, bgr = cap.retrieve()
            if not ok or bgr is None:
                continue
            if next_t == 0.0:  # first frame: its size is what a viewer sees, rotation metadata applied
                self.info.height, self.info.width = bgr.shape[:2]
            small = shrink(bgr)
            yield Frame(max(t, 0.0), cv2.cvtColor(small, cv2.COLOR_BGR2RGB))
            next_t = (math.floor((t + eps) / interval) + 1) * interval
        if last_t is None:
            raise MediaError(UNREADABLE)
        frame_dur = 1.0 / self.info.fps if self.info.fps else 0.0
        self.info.duration = max(last_t, 0.0) + frame_dur

    def close(self) -> None:
        self._cap.release()


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
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise MediaError(UNREADABLE)
    return _Video(path, cap)
