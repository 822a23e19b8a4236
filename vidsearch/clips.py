"""A span of an indexed video cut into an MP4 (H.264/AAC, yuv420p, +faststart) with the bundled ffmpeg, cached in
the index folder.

Frame-accurate: the clip's first frame is the frame shown at `start` (the last frame whose presentation time is at
or before it, as the catalog's times and the player mean them; times are kept in whole milliseconds), and the clip
lasts end - start (the video to within a frame, the audio to the sample). The video packets' times are read with
PyAV first (no decoding) to find that frame and a keyframe before it; ffmpeg then decodes from that keyframe with
the file's own timestamps kept, whatever the container's seeking does, and drops every frame before the first one:
no keyframe snapping, no frozen first frames. The clip's time 0 is that frame's own time (less than a frame before
`start`, and exactly `start` when it is a frame's time, as a moment's start is), so every frame keeps its duration and
its place (variable frame rates stay as they are), and the audio is cut at the same instant.

Clips are made as jobs and cached with the browser-playable copies (vidsearch.renders), under the key
`clip-<start ms>-<end ms>`.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import av

from .errors import ClipError, MediaError
from .playback import ffmpeg
from .renders import Render

MAX_SECONDS = 600.0  # the longest clip made by default
TIMEOUT = 120  # seconds, plus 20 per second of clip: ffmpeg is ended after that
ROUNDING = 0.0005  # times are kept in whole milliseconds: a frame at 1/30 s is asked for as 0.033


def parse_time(text: str | float) -> float:
    """Seconds from "12.5", "1:05" (m:ss) or "1:02:03.5" (h:mm:ss); raises ClipError for anything else."""
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        parts = str(text).strip().split(":")
        try:
            if len(parts) > 3 or any(not p.strip() for p in parts) or any(
                    float(p) < 0 or float(p) >= 60 for p in parts[1:]):
                raise ValueError
            value = 0.0
            for p in parts:
                value = value * 60 + float(p)
        except ValueError:
            raise ClipError(f"{str(text).strip()!r} is not a time: give seconds (12.5) or m:ss (1:05).") from None
    if not math.isfinite(value) or value < 0:
        raise ClipError(f"{text!r} is not a time from the start of the video.")
    return value


def check_span(start: float, end: float, duration: float, limit: float = MAX_SECONDS) -> tuple[int, int]:
    """The span in whole milliseconds, after checking that 0 <= start < end <= duration and end - start <= limit;
    raises ClipError with one sentence otherwise. An end past the duration by less than a millisecond (rounding)
    is the end of the video."""
    start_ms, end_ms, duration_ms = round(start * 1000), round(end * 1000), math.floor(duration * 1000)
    if end_ms > duration_ms and end_ms - duration_ms <= 1:
        end_ms = duration_ms
    if not math.isfinite(start) or not math.isfinite(end) or start_ms < 0:
        raise ClipError("A clip's start and end must be times from the start of the video.")
    if end_ms > duration_ms:
        raise ClipError(f"The clip ends at {end:g} s, after the video's end ({duration:g} s).")
    if start_ms >= end_ms:
        raise ClipError("A clip must end after it starts.")
    if end_ms - start_ms > round(limit * 1000):
        raise ClipError(f"A clip can be at most {limit:g} s long; this one is {(end_ms - start_ms) / 1000:g} s.")
    return start_ms, end_ms


def clip_name(source_path: str, start: float, end: float) -> str:
    """The file name a clip is offered under: <video stem>_0m12s-0m20s.mp4."""
    def t(s: float) -> str:
        h, rest = divmod(round(s * 1000), 3_600_000)
        m, ms = divmod(rest, 60_000)
        sec = f"{ms // 1000}" if ms % 1000 == 0 else f"{ms / 1000:.3f}".rstrip("0")
        return (f"{h}h{m:02d}m" if h else f"{m}m") + f"{sec}s"

    return f"{Path(source_path).stem}_{t(start)}-{t(end)}.mp4"


@dataclass(frozen=True)
class Cut:
    """Where to cut, in the file's own timestamps (seconds): ffmpeg seeks to `seek` (at or before a keyframe that
    precedes the first frame), keeps video frames from `keep` on (halfway between the frame shown at the clip's
    start and the frame before it, so that rounding cannot keep the wrong one) and moves `first`, that frame's
    time, to 0."""

    seek: float
    keep: float
    first: float


def frame_cut(path: str, start: float) -> Cut:
    """How to cut from the frame shown at `start` (seconds after the video stream's first frame, as the catalog
    counts). Reads packets only (no decoding), from a keyframe before `start`."""
    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            tb = float(stream.time_base or 0) or 1 / 90000
            origin = (stream.start_time or 0) * tb
            target = origin + start + ROUNDING
            seek, times = _packets_from_keyframe(container, stream, tb, origin, target)
    except (av.FFmpegError, IndexError) as e:
        raise MediaError(f"The video cannot be read to cut a clip ({e}).") from None
    before = [t for t in times if t <= target]
    if not before:  # nothing shown yet at `start` (a late first frame): the clip opens with the first frame
        first = min(times, default=origin)
        return Cut(seek, first - 0.001, first)
    first = max(before)
    earlier = [t for t in before if t < first]
    return Cut(seek, (max(earlier) + first) / 2 if earlier else first - 0.001, first)


def _packets_from_keyframe(container, stream, tb: float, origin: float, target: float) -> tuple[float, list[float]]:
    """A time to seek to from which the video's packets begin with a keyframe at or before `target`, and the
    presentation times (s) of the packets from that keyframe to past `target`. Seeks back further while a seek
    lands after the target or on no keyframe (MPEG-TS and -PS seek by bytes, and some streams have few keyframes)."""
    margin, floor = 1.0, min(origin, max(origin - 1.0, 0.0))  # a time before the first packet (seeks refuse < 0)
    while True:
        seek = max(target - margin, floor)
        container.seek(int(seek / tb), stream=stream, backward=True, any_frame=False)
        times: list[float] = []
        after = 0
        for p in container.demux(stream):
            if p.pts is None and p.dts is None:
                continue
            t = (p.pts if p.pts is not None else p.dts) * tb
            if not times and not (p.is_keyframe and t <= target):
                if t > target:
                    break  # landed past it
                continue  # not decodable before a keyframe
            times.append(t)
            decoded_at = p.dts * tb if p.dts is not None else t
            # Decode order: once a packet's dts is past the target, every later packet is shown after it too.
            after += decoded_at > target
            if (p.dts is not None and decoded_at > target) or after > 16:
                break
        if times or seek <= floor:
            return seek, times
        margin *= 4


def ffmpeg_command(source: str, target: str, cut: Cut, length: float) -> list[str]:
    """ffmpeg arguments for a clip: seek to `cut.seek` and keep the file's own timestamps (-copyts) so that the
    cut does not depend on where the seek lands; keep video frames in [cut.keep, cut.first + length), audio in
    [cut.first, cut.first + length], and move cut.first to 0. Frames keep their timestamps (variable frame rates
    stay as they are)."""
    first, end = f"{cut.first:.6f}", f"{cut.first + length:.6f}"
    return [ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-copyts", "-noaccurate_seek", "-seek_timestamp", "1", "-ss", f"{cut.seek:.6f}", "-i", source,
            "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
            "-vf", f"trim=start={cut.keep:.6f}:end={cut.first + length - ROUNDING:.6f},setpts=PTS-{first}/TB,"
                   "scale=trunc(iw/2)*2:trunc(ih/2)*2",  # 4:2:0 needs even sizes
            "-af", f"atrim=start={first}:end={end},asetpts=PTS-{first}/TB",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
            "-fps_mode", "passthrough", "-enc_time_base:v", "1:90000",
            "-c:a", "aac", "-b:a", "160k", "-ac", "2",
            "-movflags", "+faststart", "-f", "mp4", target]


def clip_render(source_id: int, path: str, duration: float, start: float, end: float,
                limit: float = MAX_SECONDS) -> Render:
    """The render of [start, end] of a video (see vidsearch.renders); raises ClipError for a span that is empty,
    outside the video or over `limit`."""
    start_ms, end_ms = check_span(start, end, duration, limit)
    return Render("clip", source_id, path, f"clip-{start_ms}-{end_ms}", (end_ms - start_ms) / 1000,
                  functools.partial(_command, start_ms / 1000, end_ms / 1000), "cut this clip",
                  timeout=TIMEOUT + 20 * (end_ms - start_ms) / 1000, span=(start_ms / 1000, end_ms / 1000))


def _command(start: float, end: float, source: str, target: str) -> list[str]:
    return ffmpeg_command(source, target, frame_cut(source, start), end - start)
