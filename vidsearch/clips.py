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

Cache: `<index>/clips/<source id>-<hash of path, size and mtime>-<start ms>-<end ms>.mp4`, so a changed file gets new
clips. A clip is written to a part file and renamed into place under a per-clip OS lock: concurrent requests for
the same clip, from threads or processes, make it once (the others wait and get the same file). Pruning, after each
clip made: the least recently used clips (a cache hit counts as a use) go until the folder holds at most
`MAX_FILES` (500) clips and `MAX_BYTES` (2 GiB), the new one always kept; part files of processes that died go too.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import math
import os
import re
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from .errors import ClipError, MediaError
from .playback import FFMPEG, pid_alive

CLIPS = "clips"
MAX_SECONDS = 600.0  # the longest clip made by default
MAX_BYTES = 2 << 30
MAX_FILES = 500
_MAKERS = threading.BoundedSemaphore(2)  # ffmpeg processes cutting clips at once in this process (each uses every core)
TIMEOUT = 120  # seconds, plus 20 per second of clip: ffmpeg is ended after that
ROUNDING = 0.0005  # times are kept in whole milliseconds: a frame at 1/30 s is asked for as 0.033
_PART = re.compile(r"\.(\d+)\.part$")


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
    return [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-copyts", "-noaccurate_seek", "-seek_timestamp", "1", "-ss", f"{cut.seek:.6f}", "-i", source,
            "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn", "-map_metadata", "-1", "-map_chapters", "-1",
            "-vf", f"trim=start={cut.keep:.6f}:end={cut.first + length - ROUNDING:.6f},setpts=PTS-{first}/TB,"
                   "scale=trunc(iw/2)*2:trunc(ih/2)*2",  # 4:2:0 needs even sizes
            "-af", f"atrim=start={first}:end={end},asetpts=PTS-{first}/TB",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
            "-fps_mode", "passthrough", "-enc_time_base:v", "1:90000",
            "-c:a", "aac", "-b:a", "160k", "-ac", "2",
            "-movflags", "+faststart", "-f", "mp4", target]


class Clips:
    """The clips of one index folder."""

    def __init__(self, index_root: Path, max_bytes: int = MAX_BYTES, max_files: int = MAX_FILES):
        self.folder = Path(index_root) / CLIPS
        self.max_bytes, self.max_files = max_bytes, max_files

    def clip(self, source_id: int, path: str, duration: float, start: float, end: float,
             limit: float = MAX_SECONDS) -> Path:
        """The cached clip of [start, end] of a video, made now if there is none (blocks until it is made)."""
        start_ms, end_ms = check_span(start, end, duration, limit)
        try:
            st = os.stat(path)
        except OSError:
            raise MediaError("The video is no longer on disk.") from None
        version = hashlib.sha1(os.fsencode(path) + f"\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()[:12]
        key = f"{source_id}-{version}-{start_ms}-{end_ms}"
        target = self.folder / f"{key}.mp4"
        if _touch(target):
            return target
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with _locked(self.folder / f"{key}.lock"):
                if _touch(target):  # made while this one waited
                    return target
                with _MAKERS:
                    self._make(path, target, start_ms / 1000, end_ms / 1000)
            self.prune(keep=target)
        except OSError as e:
            raise MediaError(f"The clip could not be written in {self.folder} ({e.strerror or e}).") from None
        return target

    def _make(self, path: str, target: Path, start: float, end: float) -> None:
        cut = frame_cut(path, start)
        part = target.with_name(f"{target.name}.{os.getpid()}.part")
        try:
            proc = subprocess.run(ffmpeg_command(path, str(part), cut, end - start), capture_output=True,
                                  check=False, text=True, errors="replace", timeout=TIMEOUT + 20 * (end - start))
            if proc.returncode != 0 or not part.is_file():
                reason = proc.stderr.strip().splitlines()
                raise MediaError("ffmpeg could not cut this clip" + (f": {reason[-1]}" if reason else "."))
            os.replace(part, target)
        except subprocess.TimeoutExpired:
            raise MediaError("ffmpeg took too long to cut this clip.") from None
        finally:
            part.unlink(missing_ok=True)

    def prune(self, source_ids: set[int] | None = None, keep: Path | None = None) -> None:
        """Drop part files of dead processes, lock files no one holds, clips of sources not in `source_ids` (when
        given), then the least recently used clips until at most max_files clips and max_bytes remain (never
        `keep`)."""
        if not self.folder.is_dir():
            return
        clips = []
        for f in self.folder.iterdir():
            part = _PART.search(f.name)
            owner = f.name.split("-")[0]
            try:
                if part is not None:
                    if not pid_alive(int(part.group(1))):
                        f.unlink(missing_ok=True)
                elif f.suffix == ".lock":
                    _drop_lock(f)
                elif f.suffix == ".mp4":
                    if source_ids is not None and owner.isdigit() and int(owner) not in source_ids:
                        f.unlink(missing_ok=True)
                    elif f != keep:
                        st = f.stat()
                        clips.append((st.st_mtime, st.st_size, f))
            except OSError:
                continue  # removed by another process meanwhile
        total = sum(size for _, size, _ in clips) + (keep.stat().st_size if keep is not None and keep.is_file()
                                                      else 0)
        count = len(clips) + (keep is not None)
        for _, size, f in sorted(clips, key=lambda c: c[0]):
            if total <= self.max_bytes and count <= self.max_files:
                break
            f.unlink(missing_ok=True)
            total -= size
            count -= 1


def _touch(target: Path) -> bool:
    """Whether the clip is there; marks it used (for pruning, least recently used first)."""
    try:
        os.utime(target)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive OS lock on `path` (threads and processes alike), the file removed on release. A waiter that got
    the lock of a file already removed tries again on the new one."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.path.exists(path) and os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # before unlocking: only the holder ever removes it
        os.close(fd)


def _drop_lock(path: Path) -> None:
    """Remove a lock file left by a process that died, if no one holds it now (as its holder: see _locked)."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.path.exists(path) and os.stat(path).st_ino == os.fstat(fd).st_ino:
            path.unlink()
    except BlockingIOError:
        pass  # being made now
    finally:
        os.close(fd)
