"""Generated test media: coloured shapes the tiny test CLIP has learned, drawn in RGB and encoded with ffmpeg."""
from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

# RGB, not BGR: the videos are fed to ffmpeg as rgb24, so a BGR/RGB mix-up in vidsearch turns red into blue.
COLOURS = {
    "red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (240, 220, 30),
    "orange": (245, 140, 20), "purple": (140, 40, 180), "white": (255, 255, 255), "black": (0, 0, 0),
}
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128)}
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def draw(shape: str, colour: str, size=(320, 180), background: str = "white") -> np.ndarray:
    """An RGB uint8 frame with one filled shape in the middle."""
    w, h = size
    img = np.empty((h, w, 3), np.uint8)
    img[:] = BACKGROUNDS[background]
    c = COLOURS[colour]
    cx, cy, r = w // 2, h // 2, int(min(w, h) * 0.35)
    if shape == "circle":
        cv2.circle(img, (cx, cy), r, c, -1, lineType=cv2.LINE_AA)
    elif shape == "square":
        cv2.rectangle(img, (cx - r, cy - r), (cx + r, cy + r), c, -1)
    elif shape == "triangle":
        pts = np.array([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], np.int32)
        cv2.fillPoly(img, [pts], c, lineType=cv2.LINE_AA)
    else:
        raise ValueError(shape)
    return img


def encode(path: Path, frames, fps: float | None = 25, size=(320, 180), pts: list[float] | None = None,
           codec: str = "libx264", extra: list[str] = ()) -> Path:
    """Encode RGB frames with ffmpeg. With `pts`, frame i is shown at pts[i] seconds (variable frame rate)."""
    w, h = size
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [FFMPEG, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}",
           "-r", str(fps or 25), "-i", "-"]
    if pts is not None:
        expr = "+".join(f"eq(N,{i})*{t}" for i, t in enumerate(pts))
        # Timestamps in milliseconds so that the container keeps them exactly.
        cmd += ["-vf", f"settb=1/1000,setpts='({expr})/TB'", "-fps_mode", "passthrough", "-video_track_timescale",
                "1000"]
    cmd += ["-c:v", codec, *(["-pix_fmt", "yuv420p"] if codec == "libx264" else []), *extra, str(path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    for f in frames:
        proc.stdin.write(np.ascontiguousarray(f).tobytes())
    proc.stdin.close()
    assert proc.wait() == 0, f"ffmpeg failed for {path}"
    return path


def segments_video(path: Path, segments: list[tuple[float, str, str]], fps: float = 25, size=(320, 180),
                   background: str = "white") -> Path:
    """A video made of (seconds, shape, colour) segments, in order."""
    frames = []
    for seconds, shape, colour in segments:
        frame = draw(shape, colour, size, background)
        frames += [frame] * round(seconds * fps)
    return encode(path, frames, fps, size)
