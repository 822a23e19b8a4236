"""Open one media file and sample its frames as RGB arrays with their presentation times."""
from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

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
# Decoder shortcuts (see _Video; benchmarks/change.py --decode measures each): FFmpeg's threading, planning each
# group from its timestamps (decode up to its last sampled frame, then drain), skipping unsampled non-reference
# frames.
THREAD_TYPE = "AUTO"
PLAN = True
SKIP_NONREF = True
# A video whose short side is under this many times the `side` asked for is decoded at its own size: the model's
# resize alone then shrinks it, as open_clip's would (a scaled decode first, then the model's resize, left a 270p
# video's vectors at cosine 0.987 of open_clip's on a 64-pixel model: tests/test_fidelity.py). Larger frames are
# scaled in the decoder: that bounds the memory and CPU of every step after it.
NATIVE_BELOW = 2.25


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
    rgb: np.ndarray  # HxWx3 uint8, shortest side at most the `side` asked for (a video's: see NATIVE_BELOW)


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

    Packets are read one group of pictures (keyframe to keyframe) at a time. Each mark takes the first frame
    shown at or after it; which frames those are is worked out from the group's packet timestamps before
    anything is decoded (`_Sampler.plan`), so that:

    - a group that holds no mark is never decoded;
    - a group is decoded only up to the packet of its last sampled frame, and the frames the decoder still holds
      are drained out rather than pushed out by decoding more packets (a group whose only mark falls on its
      keyframe costs one decoded picture);
    - non-reference frames (most B-frames) that are not sampled are skipped: nothing depends on them.

    None of this changes which frame a mark takes or its pixels (tests/test_extract.py, tests/test_change.py,
    benchmarks/change.py --decode). Frames are converted only at marks, scaled down in the same FFmpeg pass to
    the `side` the model's preprocessing needs (small videos are not: NATIVE_BELOW).
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
        stream.thread_type = THREAD_TYPE
        sampler = _Sampler(self, interval, side)
        group: list = []
        try:
            for p in self._container.demux(stream):
                when = sampler.saw(p)
                if p.size == 0:
                    continue
                if p.is_keyframe and group and when is not None:
                    yield from sampler.decode(group, when, closed=True)
                    group = []
                elif len(group) >= MAX_GROUP:  # a stream with few keyframes: bound what waits in memory
                    yield from sampler.decode(group, None, closed=False)
                    group = []
                group.append(p)
        except av.FFmpegError:
            pass  # a truncated or damaged file: keep what was read before the damage
        yield from sampler.decode(group, None, closed=True)
        if sampler.n == 0:
            raise MediaError(UNREADABLE)
        self.info.duration = sampler.end

    @staticmethod
    def _to_rgb(fr, side: int) -> np.ndarray:
        # Scaled and converted in one FFmpeg pass, straight to the size the model's preprocessing needs (unless
        # small already: NATIVE_BELOW).
        h, w = fr.height, fr.width
        scale = 1.0 if min(h, w) < NATIVE_BELOW * side else min(1.0, side / min(h, w))
        rgb = fr.to_ndarray(format="rgb24", width=max(1, round(w * scale)), height=max(1, round(h * scale)),
                            interpolation="AREA")
        turns = round(_rotation(fr) / 90) % 4
        return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb

    def close(self) -> None:
        self._container.close()


class _Sampler:
    """One pass of `_Video.frames`: the next mark, what was taken, and the decoding of one group of packets."""

    EPS = 1e-3  # seconds: a frame this close before a mark counts as at the mark

    def __init__(self, video: _Video, interval: float, side: int):
        self.video, self.interval, self.side = video, interval, side
        stream = video._stream
        self.ctx = stream.codec_context
        self.tb = float(stream.time_base or 0) or 1 / 90000
        self.start = stream.start_time or 0
        self.frame_dur = 1.0 / video.info.fps if video.info.fps else 0.0
        self.next = 0.0  # seconds: the next mark
        self.n = 0  # frames taken
        self.end = 0.0  # seconds: the end of the last packet seen

    def seconds(self, pts: int) -> float:
        return max((pts - self.start) * self.tb, 0.0)

    def saw(self, p) -> int | None:
        """Note a demuxed packet (the duration comes from the packets: the last frames may never be decoded);
        its timestamp, or None."""
        when = p.pts if p.pts is not None else p.dts
        if when is not None:
            last = (when - self.start) * self.tb + (p.duration * self.tb if p.duration else self.frame_dur)
            self.end = max(self.end, last)
        return when

    def mark_after(self, t: float) -> float:
        return (math.floor((t + self.EPS) / self.interval) + 1) * self.interval

    def take(self, frames) -> Iterator[Frame]:
        for fr in frames:
            if fr.pts is None:
                continue
            t = self.seconds(fr.pts)
            if t + self.EPS < self.next:
                continue
            rgb = self.video._to_rgb(fr, self.side)
            if self.n == 0:  # its size is what a viewer sees, rotation applied
                self.video.info.height, self.video.info.width = _display_size(fr)
            self.n += 1
            yield Frame(t, rgb)
            self.next = self.mark_after(t)

    def plan(self, group: list, until: float | None) -> tuple[set[int], bool] | None:
        """Which packets of `group` hold the frames the marks will take, from their timestamps, and whether
        they are all the marks before `until` seconds (if not, a mark falls between the group's last frame and
        the next keyframe: its frame may be one that is decoded after that keyframe but shown before it, and
        needs this group's last pictures). None when the timestamps cannot tell: a packet without one, or
        timestamps that never go back in decoding order (no reordering, or decoding times standing in for
        presentation times: a B-frame's packet would then be taken for another frame's)."""
        pts = [p.pts for p in group]
        if None in pts or all(a < b for a, b in zip(pts, pts[1:])):
            return None
        nxt, taken = self.next, set()
        for i in sorted(range(len(group)), key=lambda i: group[i].pts):
            t = self.seconds(group[i].pts)
            if until is not None and t >= until:
                break
            if t + self.EPS >= nxt:
                taken.add(i)
                nxt = self.mark_after(t)
        return taken, until is None or nxt >= until

    def send(self, p, skip: bool = False) -> Iterator[Frame]:
        """Decode one packet (None: drain the decoder); `skip`: a non-reference frame in it need not be."""
        self.ctx.skip_frame = "NONREF" if skip and SKIP_NONREF else "DEFAULT"
        try:
            frames = self.ctx.decode(p)
        except av.FFmpegError:
            frames = []  # a damaged packet: the frames around it still count
        finally:
            self.ctx.skip_frame = "DEFAULT"
        yield from self.take(frames)

    def decode(self, group: list, keyframe: int | None, closed: bool) -> Iterator[Frame]:
        """Decode what the marks need of `group` (packets in decoding order). `keyframe`: the timestamp of the
        keyframe that follows it, if any. `closed`: the next packet sent, if any, will be a keyframe, so the
        decoder may be drained and reset after this group."""
        until = None if keyframe is None else (keyframe - self.start) * self.tb
        if until is not None and self.next >= until:
            return  # no mark in this group
        planned = self.plan(group, until) if PLAN else None
        if planned is None:  # decode in order until every mark before `until` is taken
            for p in group:
                if until is not None and self.next >= until:
                    break
                yield from self.send(p)
            closed = closed and (until is None or self.next >= until)
        else:
            taken, covered = planned
            closed = closed and covered
            # Up to the last packet that holds a sampled frame; all of them when the next packets depend on these.
            for i in range(max(taken, default=-1) + 1 if closed else len(group)):
                yield from self.send(group[i], skip=i not in taken)
        if closed:  # the frames the decoder still holds, then a reset, ready for a keyframe
            yield from self.send(None)
            self.ctx.flush_buffers()


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
