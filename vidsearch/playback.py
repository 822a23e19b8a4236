"""How a browser plays a source: which files it plays as they are, the MIME types media are served with, and
H.264/AAC copies ("proxies") of the videos it cannot play, made as jobs and cached with the clips
(vidsearch.renders) under the key `proxy`: once per version of the file. Timestamps are passed through unchanged,
so a time in the catalog is the same moment in the proxy.
"""
from __future__ import annotations

import functools
import mimetypes
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg

from .errors import Busy, MediaError
from .renders import Job, Jobs, Render


@functools.cache
def ffmpeg() -> str:
    """imageio-ffmpeg's binary, found on first use: finding it runs it once (`-version`), which a search never needs."""
    return imageio_ffmpeg.get_ffmpeg_exe()


MIME_TYPES = {
    ".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".qt": "video/quicktime",
    ".webm": "video/webm", ".mkv": "video/x-matroska", ".avi": "video/x-msvideo", ".mpg": "video/mpeg",
    ".mpeg": "video/mpeg", ".vob": "video/mpeg", ".wmv": "video/x-ms-wmv", ".flv": "video/x-flv",
    ".3gp": "video/3gpp", ".ts": "video/mp2t", ".mts": "video/mp2t", ".m2ts": "video/mp2t", ".ogv": "video/ogg",
    ".ogg": "video/ogg", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
    ".webp": "image/webp", ".avif": "image/avif", ".bmp": "image/bmp", ".tif": "image/tiff", ".tiff": "image/tiff",
    ".heic": "image/heic",
}

# (extensions, video codecs, audio codecs) that every current browser plays; anything else gets an H.264 proxy.
# MOV is the same ISO container as MP4, so it is served as video/mp4, which Firefox needs to play it.
PLAYABLE = [
    ({".mp4", ".m4v", ".mov"}, {"h264", "av1", "vp9"}, {None, "aac", "mp3", "opus", "flac"}),
    ({".webm"}, {"vp8", "vp9", "av1"}, {None, "opus", "vorbis"}),
]
PLAYABLE_PIXEL_FORMATS = {"yuv420p", "yuvj420p"}  # 10-bit and 4:2:2/4:4:4 H.264 fail in most browsers


def mime_type(path: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    return MIME_TYPES.get(ext) or mimetypes.guess_type(path)[0] or "application/octet-stream"


def playable_mime_type(path: str) -> str:
    """The type to serve a browser-playable original with."""
    return "video/mp4" if os.path.splitext(path)[1].lower() in (".mov", ".qt") else mime_type(path)


@dataclass(frozen=True)
class Streams:
    video: str | None  # codec name as ffmpeg says it: h264, mpeg4, cinepak, ...
    pixel_format: str | None
    audio: str | None


_VIDEO = re.compile(r"Stream #\d+:\d+\S*: Video: (\w+)[^,\n]*, (\w+)(.*)")
_AUDIO = re.compile(r"Stream #\d+:\d+\S*: Audio: (\w+)")


def probe(path: str) -> Streams:
    """The first video and audio streams of a file, from ffmpeg's description of its input (no ffprobe ships with
    imageio-ffmpeg)."""
    try:
        # Exits 1 (no output file given) after describing the input on stderr.
        out = subprocess.run([ffmpeg(), "-hide_banner", "-nostdin", "-i", path], capture_output=True, timeout=60,
                             check=False, text=True, errors="replace").stderr
    except (OSError, subprocess.TimeoutExpired):
        return Streams(None, None, None)
    video = next((m for m in _VIDEO.finditer(out) if "(attached pic)" not in m.group(3)), None)
    audio = _AUDIO.search(out)
    return Streams(video and video.group(1), video and video.group(2), audio and audio.group(1))


def browser_playable(path: str) -> bool:
    """Whether every current browser plays the file as it is (container, codecs and pixel format)."""
    ext = os.path.splitext(path)[1].lower()
    if not any(ext in exts for exts, _, _ in PLAYABLE):
        return False  # skip the probe: the container alone rules it out
    s = probe(path)
    return s.pixel_format in PLAYABLE_PIXEL_FORMATS and any(
        ext in exts and s.video in videos and s.audio in audios for exts, videos, audios in PLAYABLE)


@dataclass
class Playback:
    """Where a browser can play a source from. `state` is "ready" (play `file`), "preparing" (`job` makes its copy),
    "busy" (no room in the queue of jobs now: ask again later) or "failed"."""

    state: str
    file: Path | None = None
    mimetype: str = "video/mp4"
    proxy: bool = False
    progress: float | None = None  # 0..1 while preparing
    error: str | None = None
    job: Job | None = None


def proxy_command(source: str, target: str) -> list[str]:
    """ffmpeg arguments for a proxy whose timeline is the original's: every frame keeps its timestamp
    (`-fps_mode passthrough`, no frames duplicated or dropped) and the file starts at 0 as the catalog's times do."""
    return [ffmpeg(), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", source,
            "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
            "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",  # 4:2:0 needs even sizes
            "-fps_mode", "passthrough",
            "-c:a", "aac", "-b:a", "128k", "-ac", "2",
            "-movflags", "+faststart", "-f", "mp4", target]


def proxy_render(source_id: int, path: str, duration: float) -> Render:
    return Render("proxy", source_id, path, "proxy", duration, proxy_command, "convert this video")


def playback(jobs: Jobs, source_id: int, path: str, duration: float) -> Playback:
    """The original if browsers play it, else its proxy: ready, being made (queued now if needed), or failed."""
    try:
        st = os.stat(path)
    except OSError:
        return Playback("failed", error="The file is no longer on disk.")
    if _browser_playable(path, st.st_size, st.st_mtime_ns):
        return Playback("ready", Path(path), playable_mime_type(path))
    try:
        job = jobs.submit(proxy_render(source_id, path, duration))
    except Busy as e:
        return Playback("busy", proxy=True, error=str(e))
    except MediaError as e:
        return Playback("failed", proxy=True, error=str(e))
    if job.state == "done":
        return Playback("ready", job.file, proxy=True, job=job)
    if job.state == "failed":
        return Playback("failed", proxy=True, error=job.error, job=job)
    return Playback("preparing", proxy=True, progress=job.progress, job=job)


@functools.lru_cache(maxsize=4096)
def _browser_playable(path: str, size: int, mtime_ns: int) -> bool:
    return browser_playable(path)
