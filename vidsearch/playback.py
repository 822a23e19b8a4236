"""How a browser plays a source: which files it plays as they are, the MIME types media are served with, and
H.264/AAC copies ("proxies") of the videos it cannot play, made once and cached in the index folder.

Proxies are made by one background thread, one at a time (each ffmpeg already uses every core), and never twice for
the same file version: the cache key holds the file's size and modification time, so a changed file gets a new
proxy. Timestamps are passed through unchanged, so a time in the catalog is the same moment in the proxy.
"""
from __future__ import annotations

import hashlib
import mimetypes
import os
import queue
import re
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

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


PROXIES = "proxies"
_PART = re.compile(r"\.(\d+)\.part$")


@dataclass
class Playback:
    """Where a browser can play a source from. `state` is "ready" (play `file`), "preparing" or "failed"."""

    state: str
    file: Path | None = None
    mimetype: str = "video/mp4"
    proxy: bool = False
    progress: float | None = None  # 0..1 while preparing
    error: str | None = None


@dataclass
class _Job:
    key: str
    source: str
    duration: float
    target: Path
    progress: float = 0.0
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)


def proxy_command(source: str, target: str) -> list[str]:
    """ffmpeg arguments for a proxy whose timeline is the original's: every frame keeps its timestamp
    (`-fps_mode passthrough`, no frames duplicated or dropped) and the file starts at 0 as the catalog's times do."""
    return [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", source,
            "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
            "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",  # 4:2:0 needs even sizes
            "-fps_mode", "passthrough",
            "-c:a", "aac", "-b:a", "128k", "-ac", "2",
            "-movflags", "+faststart", "-f", "mp4", "-progress", "pipe:1", "-nostats", target]


class Proxies:
    """The proxies of one index folder, and the thread that makes them."""

    def __init__(self, index_root: Path):
        self.folder = Path(index_root) / PROXIES
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._playable: dict[str, bool] = {}
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen | None = None
        self._closed = False

    def playback(self, source_id: int, path: str, duration: float) -> Playback:
        """The original if browsers play it, else its proxy: ready, being made, or failed. Queues the proxy."""
        try:
            st = os.stat(path)
        except OSError:
            return Playback("failed", error="The file is no longer on disk.")
        version = os.fsencode(path) + f"\0{st.st_size}\0{st.st_mtime_ns}".encode()
        key = f"{source_id}-{hashlib.sha1(version).hexdigest()[:12]}"
        playable = self._playable.get(key)
        if playable is None:
            playable = self._playable[key] = browser_playable(path)
        if playable:
            return Playback("ready", Path(path), playable_mime_type(path))
        target = self.folder / f"{key}.mp4"
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                if target.is_file():
                    return Playback("ready", target, proxy=True)
                job = self._jobs[key] = _Job(key, path, duration, target)
                self._queue.put(job)
                self._start()
        if job.error is not None:
            return Playback("failed", proxy=True, error=job.error)
        if job.done.is_set():
            return Playback("ready", target, proxy=True)
        return Playback("preparing", proxy=True, progress=job.progress)

    def wait(self, source_id: int, path: str, duration: float, timeout: float | None = None) -> Playback:
        """playback(), after waiting for the proxy to be finished if one is being made."""
        self.playback(source_id, path, duration)
        with self._lock:
            jobs = [j for k, j in self._jobs.items() if k.startswith(f"{source_id}-")]
        for job in jobs:
            job.done.wait(timeout)
        return self.playback(source_id, path, duration)

    def prune(self, source_ids: set[int]) -> None:
        """Delete proxies of sources no longer in the catalog, and parts left by processes that died."""
        if not self.folder.is_dir():
            return
        for f in self.folder.iterdir():
            part = _PART.search(f.name)
            owner = f.name.split("-")[0]
            dead_part = part is not None and not pid_alive(int(part.group(1)))
            orphan = f.suffix == ".mp4" and owner.isdigit() and int(owner) not in source_ids
            if dead_part or orphan:
                f.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop the worker, ending an ffmpeg that is running (its part file is removed)."""
        with self._lock:
            self._closed = True
            proc, thread = self._proc, self._thread
        if proc is not None:
            proc.kill()
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=10)

    def _start(self) -> None:
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._work, name="vidsearch-proxies", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while (job := self._queue.get()) is not None:
            try:
                self._make(job)
            except OSError as e:
                job.error = f"The browser copy could not be written: {e}"
            finally:
                job.done.set()

    def _make(self, job: _Job) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        part = job.target.with_name(f"{job.key}.mp4.{os.getpid()}.part")
        with tempfile.TemporaryFile() as log:
            with self._lock:
                if self._closed:
                    job.error = "The server is shutting down."
                    return
                self._proc = proc = subprocess.Popen(proxy_command(job.source, str(part)), stdout=subprocess.PIPE,
                                                     stderr=log, text=True)
            for line in proc.stdout:
                if line.startswith("out_time_us=") and job.duration > 0 and line[12:].strip().isdigit():
                    job.progress = min(0.99, int(line[12:]) / 1e6 / job.duration)
            code = proc.wait()
            with self._lock:
                self._proc = None
            if code != 0:
                part.unlink(missing_ok=True)
                log.seek(0)
                reason = log.read().decode(errors="replace").strip().splitlines()
                job.error = "ffmpeg could not convert this video" + (f": {reason[-1]}" if reason else ".")
                return
        os.replace(part, job.target)
        for old in self.folder.glob(f"{job.key.split('-')[0]}-*.mp4"):
            if old != job.target:
                old.unlink(missing_ok=True)  # a proxy of an earlier version of the file
        job.progress = 1.0


def pid_alive(pid: int) -> bool:
    """Whether the process that wrote a part file still runs (it is another's, not a leftover)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
