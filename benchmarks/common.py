"""What the benchmarks share, and what the tests borrow from them: generated media (coloured shapes the tiny test
CLIP has learned, 720p footage, photo-like JPEGs), open_clip architectures with random weights, the models the
guide (docs/models.md) covers, synthetic clustered vectors, and how figures are printed.

Imports here stay light (numpy, OpenCV, imageio-ffmpeg); torch and vidsearch load inside the functions that need
them, so that `tests/` can take its media from here cheaply.
"""
from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TINY = f"local-dir:{ROOT / 'tests' / 'tiny_clip' / 'model'}"  # the test model (a data folder, not an import)
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

# (open_clip name, pretrained tag) of each model the guide covers, the default first: docs/models.md has a section
# per model in this order (tests/test_models.py checks it), bench.py `models` and cuda.py time each one.
GUIDE_MODELS = [
    ("ViT-B-32", "laion2b_s34b_b79k"),
    ("ViT-B-32-256", "datacomp_s34b_b86k"),
    ("ViT-B-32-SigLIP2-256", "webli"),
    ("ViT-B-16-SigLIP2", "webli"),
    ("PE-Core-T-16-384", "meta"),
    ("PE-Core-B-16", "meta"),
    ("MobileCLIP2-S0", "dfndr2b"),
    ("MobileCLIP2-S2", "dfndr2b"),
    ("ViT-L-14", "datacomp_xl_s13b_b90k"),
]


# -- shapes the test model knows -------------------------------------------------------------------------------

# RGB, not BGR: the videos are fed to ffmpeg as rgb24, so a BGR/RGB mix-up in vidsearch turns red into blue.
COLOURS = {
    "red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (240, 220, 30),
    "orange": (245, 140, 20), "purple": (140, 40, 180), "white": (255, 255, 255), "black": (0, 0, 0),
}
BACKGROUNDS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128)}


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
    if proc.wait():
        raise RuntimeError(f"ffmpeg failed for {path}")
    return path


def segments_video(path: Path, segments: list[tuple[float, str, str]], fps: float = 25, size=(320, 180),
                   background: str = "white") -> Path:
    """A video made of (seconds, shape, colour) segments, in order."""
    frames = []
    for seconds, shape, colour in segments:
        frame = draw(shape, colour, size, background)
        frames += [frame] * round(seconds * fps)
    return encode(path, frames, fps, size)


# -- footage and photos for the speed figures ------------------------------------------------------------------

def make_video(path: Path, seconds: float, size: str = "1280x720") -> Path:
    """720p30 H.264 at 8 Mbit/s with a 1.5 s keyframe interval (as phones and cameras write), moving noisy
    content (FFmpeg's testsrc2): every frame differs. Kept between runs."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part.mp4")
        subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                        f"testsrc2=size={size}:rate=30:duration={seconds:g}", "-vf", "noise=alls=8:allf=t",
                        "-c:v", "libx264", "-preset", "veryfast", "-g", "45", "-b:v", "8M", "-maxrate", "8M",
                        "-bufsize", "16M", "-pix_fmt", "yuv420p", str(tmp)],
                       check=True)
        tmp.rename(path)
    return path


def make_images(folder: Path, n: int = 500) -> Path:
    """n photo-like JPEGs, 320 to 4000 px on the long side (the first n of the same seeded set)."""
    from PIL import Image

    if len(list(folder.glob("*.jpg"))) < n:
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(n):
            long = int(rng.choice([320, 640, 1024, 1920, 3000, 4000]))
            short = int(long * rng.choice([0.56, 0.75, 1.0]))
            w, h = (long, short) if i % 3 else (short, long)
            small = rng.integers(0, 255, (max(h // 64, 2), max(w // 64, 2), 3), dtype=np.uint8)
            img = Image.fromarray(small).resize((w, h), Image.Resampling.BICUBIC)
            img.save(folder / f"img{i:04d}.jpg", quality=88)
    return folder


# -- still-shot footage (slides, a screencast, a fixed camera) -----------------------------------------------

W, H, FPS = 1280, 720, 30
X264 = ["-c:v", "libx264", "-preset", "veryfast", "-g", "45", "-pix_fmt", "yuv420p"]
X264_8M = [*X264, "-b:v", "8M", "-maxrate", "8M", "-bufsize", "16M"]


def render(path: Path, timeline, noise: int = 0, codec: list[str] = X264_8M, grain=None) -> Path:
    """Encode a timeline of 1280x720 RGB pictures, each (seconds, picture or function of the time within the
    segment → picture), with ffmpeg: temporal sensor noise of strength `noise` (ffmpeg's noise filter) or added
    by `grain(picture, rng)`, then `codec`."""
    if path.is_file():
        return path
    tmp = path.with_name(path.stem + ".part" + path.suffix)
    vf = ["-vf", f"noise=alls={noise}:allf=t"] if noise else []
    proc = subprocess.Popen([FFMPEG, "-y", "-loglevel", "error", "-f", "rawvideo",
                             "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-r", str(FPS), "-i", "-", *vf, *codec,
                             str(tmp)], stdin=subprocess.PIPE)
    rng = np.random.default_rng(0)
    for seconds, what in timeline:
        for i in range(round(seconds * FPS)):
            frame = what(i / FPS) if callable(what) else what
            if grain is not None:
                frame = grain(frame, rng)
            proc.stdin.write(np.ascontiguousarray(frame).tobytes())
    proc.stdin.close()
    if proc.wait():
        raise SystemExit(f"ffmpeg failed for {path}")
    tmp.rename(path)
    return path


def equal_lightness(rgb: tuple[int, int, int], towards: tuple[int, int, int]) -> tuple[int, int, int]:
    """The colour along `towards`'s hue whose CIELAB lightness equals `rgb`'s (a change of hue, not brightness)."""
    def lightness(c):
        return float(cv2.cvtColor(np.array([[c]], np.float32) / 255, cv2.COLOR_RGB2Lab)[0, 0, 0])

    target, best = lightness(rgb), None
    for k in np.linspace(0.2, 3.0, 400):
        c = tuple(int(min(255, round(v * k))) for v in towards)
        if best is None or abs(lightness(c) - target) < abs(lightness(best) - target):
            best = c
    return best


def slide(title: str, lines: list[str], bar=(40, 70, 160), shapes=(), seed: int = 0) -> np.ndarray:
    img = np.full((H, W, 3), 250, np.uint8)
    cv2.rectangle(img, (0, 0), (W, 110), bar, -1)
    cv2.putText(img, title, (50, 75), cv2.FONT_HERSHEY_DUPLEX, 1.7, (255, 255, 255), 2, cv2.LINE_AA)
    for i, line in enumerate(lines):
        y = 180 + 60 * i
        cv2.circle(img, (70, y - 10), 7, (60, 60, 60), -1, cv2.LINE_AA)
        cv2.putText(img, line, (95, y), cv2.FONT_HERSHEY_SIMPLEX, 1.05, (30, 30, 30), 2, cv2.LINE_AA)
    for kind, colour, (x, y, r) in shapes:
        if kind == "circle":
            cv2.circle(img, (x, y), r, colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(img, (x - r, y - r), (x + r, y + r), colour, -1)
    cv2.putText(img, f"Lecture 4 - page {seed}", (W - 300, H - 25), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (120, 120, 120),
                1, cv2.LINE_AA)
    return img


def deck() -> list:
    red = (200, 60, 50)
    green = equal_lightness(red, (40, 160, 60))
    bullets = ["Sampling a video once per second", "Embedding each frame with CLIP",
               "Reusing vectors of unchanged frames", "Searching by text or by image"]
    shapes = [("circle", red, (850, 420, 120)), ("rect", (50, 90, 200), (450, 450, 90))]
    recoloured = [("circle", green, (850, 420, 120)), shapes[1]]
    words = ["Keyframes every 1.5 seconds", "Non-reference frames are skipped", "Threads: one per core"]
    changed = ["Keyframes every 2.0 seconds", *words[1:]]
    return [
        (6, slide("Semantic search over video", ["A lecture on indexing"], seed=1)),
        (5, slide("Outline", bullets[:1], seed=2)),
        (5, slide("Outline", bullets[:2], seed=2)),
        (5, slide("Outline", bullets[:3], seed=2)),
        (5, slide("Outline", bullets, seed=2)),
        (6, slide("A diagram", ["Two shapes"], shapes=shapes, seed=3)),
        (6, slide("A diagram", ["Two shapes"], shapes=recoloured, seed=3)),
        (6, slide("Decoding", words, seed=4)),
        (6, slide("Decoding", changed, seed=4)),
        (6, slide("Decoding", changed, bar=(40, 120, 90), seed=4)),
        (6, slide("Questions?", [], seed=5)),
    ]


def typing_screen(t: float, lines: list[str], per_line: float) -> np.ndarray:
    img = np.full((H, W, 3), 30, np.uint8)
    cv2.rectangle(img, (0, 0), (W, 36), (60, 60, 70), -1)
    cv2.putText(img, "terminal", (20, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (200, 200, 200), 1, cv2.LINE_AA)
    shown = int(t / per_line) + 1
    for i, line in enumerate(lines[:shown]):
        cv2.putText(img, line, (20, 80 + 34 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.75, (120, 230, 120), 1, cv2.LINE_AA)
    return img


def screencast_timeline(seconds: float) -> list:
    lines = [f"$ vidsearch index lecture{i:02d}.mp4 --interval 1  # file {i}" for i in range(40)]
    shown = {}

    def frame(t):
        key = int(t / 4)
        if key not in shown:
            shown.clear()
            shown[key] = typing_screen(t, lines, 4.0)
        img = shown[key]
        phase = t % 12
        if 8 <= phase < 10:  # the pointer crosses the screen for two seconds of every twelve
            img = img.copy()
            x, y = int(200 + 400 * (phase - 8)), int(500 - 60 * (phase - 8))
            pts = np.array([(x, y), (x, y + 22), (x + 6, y + 17), (x + 14, y + 20)], np.int32)
            cv2.fillPoly(img, [pts], (255, 255, 255))
        return img

    frame.key = lambda t: (int(t / 4), t if 8 <= t % 12 < 10 else None)  # what is on screen at t
    return [(seconds, frame)]


def street(seed: int = 7) -> np.ndarray:
    """A still street-like scene 20 % larger than the frame (so that a similar shot can be cut from it)."""
    rng = np.random.default_rng(seed)
    w, h = int(W * 1.2), int(H * 1.2)
    img = cv2.resize(rng.integers(60, 200, (4, 6, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    img[: h // 3] = np.linspace([150, 190, 235], [200, 220, 240], h // 3)[:, None, :].astype(np.uint8)
    for i in range(9):
        x0, bw = int(i * w / 9), int(w / 9) - 10
        top = int(rng.integers(h // 6, h // 2))
        colour = tuple(int(c) for c in rng.integers(70, 180, 3))
        cv2.rectangle(img, (x0, top), (x0 + bw, int(h * 0.7)), colour, -1)
        for wy in range(top + 20, int(h * 0.7) - 30, 45):
            for wx in range(x0 + 12, x0 + bw - 20, 35):
                lit = rng.random() < 0.4
                cv2.rectangle(img, (wx, wy), (wx + 18, wy + 26), (230, 225, 170) if lit else (50, 60, 80), -1)
    img[int(h * 0.7):] = (95, 95, 100)
    cv2.line(img, (0, int(h * 0.85)), (w, int(h * 0.85)), (230, 230, 230), 6)
    grain = rng.normal(0, 6, img.shape)
    return np.clip(img + grain, 0, 255).astype(np.uint8)


def person(img: np.ndarray, x: int, y: int, scale: float, colour) -> None:
    r = int(28 * scale)
    cv2.circle(img, (x, y - int(150 * scale)), r, (200, 160, 130), -1, cv2.LINE_AA)
    cv2.rectangle(img, (x - int(40 * scale), y - int(120 * scale)), (x + int(40 * scale), y), colour, -1)
    cv2.rectangle(img, (x - int(35 * scale), y), (x + int(35 * scale), y + int(110 * scale)), (40, 40, 60), -1)


def camera_timeline() -> list:
    scene = street()
    view = scene[40:40 + H, 60:60 + W].copy()
    similar = cv2.resize(scene[0:int(H * 1.12), 0:int(W * 1.12)], (W, H), interpolation=cv2.INTER_AREA)

    def walk(t):  # someone walks into the lower-left quarter and stops there
        img = view.copy()
        x = int(40 + min(t, 4) * 85)
        person(img, x, 520, 1.4, (180, 40, 40))
        return img

    standing = walk(4.0)

    def leave(t):
        img = view.copy()
        person(img, int(380 - (t + 0.5) * 150), 520, 1.4, (180, 40, 40))
        return img

    def car(t):
        img = view.copy()
        x = int(-250 + t * 600)
        cv2.rectangle(img, (x, 560), (x + 340, 660), (30, 90, 200), -1)
        cv2.rectangle(img, (x + 60, 500), (x + 260, 560), (30, 90, 200), -1)
        return img

    def far(t):  # a small figure far away: 1/100 of the frame
        img = view.copy()
        person(img, int(900 + t * 20), 430, 0.4, (40, 40, 180))
        return img

    return [(10, view), (4, walk), (6, standing), (3, leave), (8, view), (3, car), (8, view), (6, far),
            (8, similar), (4, view)]


def footage(work: Path) -> dict[str, tuple[Path, list | None]]:
    """The footage the change gate's thresholds were chosen on (benchmarks/change.py --sweep), 720p, about 60 s
    each: kind → (video, its timeline; None where every frame differs)."""
    work.mkdir(parents=True, exist_ok=True)
    out = {"slides": ("slides.mp4", deck(), 6), "slides-dark": ("slides_dark.mp4", deck(), 20),
           "screencast": ("screencast.mp4", screencast_timeline(60), 0),
           "camera": ("camera.mp4", camera_timeline(), 8)}
    out = {k: (render(work / name, timeline, noise), timeline) for k, (name, timeline, noise) in out.items()}
    out["changing"] = (make_video(work / "changing_60s.mp4", 60), None)
    return out



def samples(path: Path, side: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """(times, pictures) of the samples vidsearch takes every second."""
    from vidsearch.extract import open_media

    media = open_media(str(path))
    try:
        frames = list(media.frames(1.0, side))
    finally:
        media.close()
    return np.array([f.t for f in frames]), [f.rgb for f in frames]


def presenter_timeline(seconds: float) -> list:
    """A recorded lecture: the slides of deck() a few seconds each, and in the lower-right corner (1/9 of the
    frame) a webcam picture of the speaker, who never stops moving (swaying, nodding, a hand now and then)."""
    slides = [picture for _, picture in deck()]
    cam_w, cam_h = W // 3, H // 3
    room = cv2.resize(street(seed=11)[:cam_h * 2, :cam_w * 2], (cam_w, cam_h), interpolation=cv2.INTER_AREA)

    def frame(t):
        img = slides[int(t / 7) % len(slides)].copy()
        cam = room.copy()
        x = int(cam_w / 2 + 25 * np.sin(t * 1.3))
        person(cam, x, int(cam_h * 0.75 + 4 * np.sin(t * 3.1)), 0.8, (60, 90, 150))
        if int(t / 5) % 2:  # a hand raised, moving
            cv2.circle(cam, (x + 50, int(cam_h * 0.45 + 12 * np.sin(t * 5))), 12, (200, 160, 130), -1)
        img[H - cam_h:, W - cam_w:] = cam
        return img

    return [(seconds, frame)]


def untuned_footage(work: Path, seconds: float = 60) -> dict[str, tuple[Path, list | None]]:
    """Generated footage the thresholds were not chosen on (kind → (video, timeline)): a recorded lecture, slides
    beside a webcam picture of the speaker (presenter_timeline), with sensor noise."""
    work.mkdir(parents=True, exist_ok=True)
    return {"lecture + webcam": (render(work / f"presenter_{seconds:g}s.mp4", presenter_timeline(seconds), 6),
                                 presenter_timeline(seconds))}


# -- models with random weights --------------------------------------------------------------------------------

def random_model(folder: Path, name: str, pretrained: str, text: dict | None = None) -> tuple[dict, dict]:
    """open_clip's `name` with random weights and the preprocessing of its `pretrained` tag (input size, resize mode,
    interpolation, mean and std), written to `folder` as a `local-dir:` model: the compute and preprocessing of the
    real model without its weights (which cannot be downloaded here). `text` overrides the text tower's config (a
    small stand-in). Returns (model_cfg, preprocess_cfg) as written."""
    import open_clip
    from safetensors.torch import save_file

    cfg = open_clip.get_model_config(name)
    tag = open_clip.get_pretrained_cfg(name, pretrained)
    if tag.get("quick_gelu"):
        cfg["quick_gelu"] = True
    if text:
        cfg["text_cfg"].update(text)
        cfg["text_cfg"].pop("hf_tokenizer_name", None)
    pp = {"size": cfg["vision_cfg"]["image_size"],
          **{k: tag[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": pp}))
    logging.disable(logging.WARNING)  # "no weights in the folder": they are written next
    try:
        model = open_clip.create_model(f"local-dir:{folder}")
    finally:
        logging.disable(logging.NOTSET)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    return cfg, pp


def random_vit_b32(folder: Path) -> str:
    """The default model (ViT-B-32) with random weights, as a `local-dir:` name; written once, kept between runs."""
    if not (folder / "open_clip_model.safetensors").is_file():
        random_model(folder, *GUIDE_MODELS[0])
    return f"local-dir:{folder}"


# -- synthetic libraries ---------------------------------------------------------------------------------------

# A Whisper model with random weights, converted for faster-whisper (CTranslate2), written offline: no real one can
# be had without the network. It exercises everything around the model and hears nothing (its words are "w17").
# Needs transformers (to build it) and ctranslate2 (to convert it; it comes with faster-whisper).
SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
            "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"]


def random_whisper(folder: Path, layers: int = 1, width: int = 64, heads: int = 2, words: int = 100) -> Path:
    """An English-only Whisper in `folder` (CTranslate2 takes a vocabulary under 51,865 tokens for English-only);
    the defaults make it tiny, benchmarks.speech gives it the real sizes' dimensions (and 50,353 words, the .en
    models' vocabulary)."""
    import ctranslate2
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import WhisperConfig, WhisperForConditionalGeneration

    stamps = [f"<|{i * 0.02:.2f}|>" for i in range(1501)]  # Whisper's timestamp tokens follow <|notimestamps|>
    vocab = {t: i for i, t in enumerate(["[UNK]", *(f"w{i}" for i in range(words)), *SPECIALS, *stamps])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.add_special_tokens(SPECIALS + stamps)
    eot = vocab["<|endoftext|>"]
    config = WhisperConfig(vocab_size=len(vocab), num_mel_bins=80, encoder_layers=layers, decoder_layers=layers,
                           d_model=width, encoder_attention_heads=heads, decoder_attention_heads=heads,
                           encoder_ffn_dim=4 * width, decoder_ffn_dim=4 * width, pad_token_id=eot, bos_token_id=eot,
                           eos_token_id=eot,
                           decoder_start_token_id=vocab["<|startoftranscript|>"], begin_suppress_tokens=[],
                           suppress_tokens=[])
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config.no_timestamps_token_id = vocab["<|notimestamps|>"]
    model.generation_config.alignment_heads = [[0, 0], [0, 1]]  # the cross-attention heads word times come from
    hf = folder / "transformers"
    model.save_pretrained(hf)
    tokenizer.save(str(hf / "tokenizer.json"))
    out = folder / "ctranslate2"
    ctranslate2.converters.TransformersConverter(str(hf), copy_files=["tokenizer.json"]).convert(str(out))
    return out


D = 512


def library(n: int, seed: int = 0, noise_seed: int | None = None, d: int = D):
    """n clustered d-dimensional unit vectors (4,096 centres), 100,000 rows at a time: CLIP embeddings of a library
    cluster by scene and subject, uniform ones do not. With noise_seed, new frames of the same clusters."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4096, d)).astype(np.float32)
    if noise_seed is not None:
        rng = np.random.default_rng(noise_seed)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        x = centres[rng.integers(0, len(centres), m)] + 0.6 * rng.standard_normal((m, d)).astype(np.float32)
        yield x / np.linalg.norm(x, axis=1, keepdims=True)


def synthetic(n: int, seed: int = 0, d: int = D) -> np.ndarray:
    """library(n, seed) in one array; another seed gives vectors off the first library's clusters."""
    return np.concatenate(list(library(n, seed, d=d))) if n else np.zeros((0, d), np.float32)


def fill_catalog(root: Path, n: int, model: str = "synthetic", d: int = D) -> float:
    """A real index folder whose catalog holds library(n): sources of 1,000 frames with frame ids 1..n, written
    through Catalog.write / add_source (one transaction per 100,000 frames), no FAISS file yet. Seconds it took (0
    when an earlier run left the same catalog)."""
    import shutil
    import time

    from vidsearch.catalog import Catalog

    if Catalog.exists(root):
        catalog = Catalog(root)
        done = catalog.counts()["frames"] == n and catalog.meta["model"] == model and int(catalog.meta["dim"]) == d
        catalog.close()
        if done:
            return 0.0
    t = time.perf_counter()
    shutil.rmtree(root, ignore_errors=True)
    catalog = Catalog.create(root, {"model": model, "pretrained": "", "dim": d, "interval": 1.0, "min_score": 0.2})
    times = [float(i) for i in range(1000)]
    done = 0
    for chunk in library(n, d=d):
        with catalog.write():
            for at in range(0, len(chunk), 1000):
                ids = catalog.add_source(f"/library/v{(done + at) // 1000:07d}.mp4", "video", 0, 0.0, 1000.0, 30.0,
                                         1280, 720, times[:len(chunk) - at], chunk[at:at + 1000])
                assert ids[0] == done + at + 1, "frame ids must be 1..n"
        done += len(chunk)
    catalog.close()
    return time.perf_counter() - t


# -- printing --------------------------------------------------------------------------------------------------

def table(title: str, header: list[str], rows: list[list]) -> None:
    """A titled Markdown table (what docs/ quotes)."""
    print(f"\n{title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    print(flush=True)


def machine() -> str:
    """CPUs, CPU model, Python, and the load average now: timings on a shared machine mean little without it."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, load average {load}"


def p50_p95(seconds) -> tuple[float, float]:
    """Median and 95th percentile, in milliseconds."""
    ms = 1000 * np.asarray(seconds, dtype=float)
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))
