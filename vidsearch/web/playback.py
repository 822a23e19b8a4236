"""Which files a browser plays as they are, and the MIME types media are served with."""
from __future__ import annotations

import mimetypes
import os
import re
import subprocess
from dataclasses import dataclass

import imageio_ffmpeg

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

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
        out = subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-i", path], capture_output=True, timeout=60,
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
