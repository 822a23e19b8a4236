"""Train the tiny CLIP model the tests use, from scratch, on generated pictures of coloured shapes.

Run from the repository root:  PYTHONPATH=. python tests/tiny_clip/train.py
It writes open_clip's `local-dir:` format (open_clip_config.json + open_clip_model.safetensors) to --out.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import time
from pathlib import Path

import cv2
import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from vidsearch.preprocess import fit_square, to_tensor_batch

SIZE = 64
MEAN = (0.48145466, 0.4578275, 0.40821073)  # OpenAI CLIP's, so the letterbox padding looks like a real model's
STD = (0.26862954, 0.26130258, 0.27577711)

MODEL_CFG = {
    "embed_dim": 64,
    # ModifiedResNet over a ViT: in the same 2500 steps a ViT (patch 8, width 64, 4 layers) reached 94.5 % held-out
    # shape accuracy, this one 99.4 %, and its steps were no cheaper.
    "vision_cfg": {"image_size": SIZE, "layers": [1, 1, 1, 1], "width": 8, "head_width": 16},
    # vocab_size is the default BPE tokenizer's; a narrow width keeps its embedding table (most of the file) small.
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}
PREPROCESS_CFG = {"size": SIZE, "mean": list(MEAN), "std": list(STD),
                  # Letterboxed (longest side, padded): the pad is grey 117, the nearest single value to the mean
                  # colour fit_square pads with in training.
                  "interpolation": "bicubic", "resize_mode": "longest", "fill_color": 117}

# Several anchors per colour, because callers draw "red" as (255,0,0) or (200,30,30), "green" as (0,255,0) or (0,128,0).
# Orange and yellow anchors are kept well apart in green: gold-like yellows made the two names overlap.
COLOURS = {
    "red": [(255, 0, 0), (220, 20, 20), (200, 30, 40), (180, 0, 0)],
    "green": [(0, 255, 0), (0, 128, 0), (40, 180, 60), (34, 139, 34)],
    "blue": [(0, 0, 255), (30, 60, 200), (0, 90, 230), (0, 0, 150)],
    "yellow": [(255, 255, 0), (240, 230, 40), (250, 235, 20)],
    "orange": [(255, 165, 0), (255, 140, 0), (240, 120, 30)],
    "purple": [(128, 0, 128), (140, 60, 190), (110, 30, 150), (160, 32, 240)],
    "white": [(255, 255, 255), (240, 240, 240)],
    "black": [(0, 0, 0), (25, 25, 25)],
}
COLOUR_NAMES = list(COLOURS)
SHAPES = ["circle", "square", "triangle"]
BG_NAMES = ["white", "black", "grey"]  # the backgrounds captions may mention
FULL_TEMPLATES = ["a {c} {s}", "a photo of a {c} {s}", "{c} {s}", "a picture of a {c} {s}", "a drawing of a {c} {s}"]
BG_TEMPLATES = ["a {c} {s} on a {b} background", "a photo of a {c} {s} on a {b} background"]
COLOUR_TEMPLATES = ["a {c} shape", "something {c}", "a {c} object"]
SHAPE_TEMPLATES = ["a {s}", "a photo of a {s}", "a {s} shape"]
ASPECTS = [1.0, 1.0, 4 / 3, 16 / 9, 16 / 9, 3 / 4, 9 / 16]  # width / height


def jitter(rng, rgb, amount):
    return tuple(int(v) for v in np.clip(np.asarray(rgb) + rng.integers(-amount, amount + 1, 3), 0, 255))


def pick_background(rng, colour, rgb):
    """A plain background colour clearly different from the shape's, named only when a caption could say it."""
    while True:
        r = rng.random()
        if r < 0.3:
            bg, name = jitter(rng, (255, 255, 255), 8), "white"
        elif r < 0.5:
            bg, name = jitter(rng, (0, 0, 0), 8), "black"
        elif r < 0.7:
            bg, name = (int(rng.integers(100, 190)),) * 3, "grey"
        elif r < 0.85:  # light, low-saturation tint: never confusable with a named shape colour
            bg, name = tuple(int(v) for v in rng.integers(170, 236, 3)), None
        else:
            bg, name = tuple(int(v) for v in rng.integers(15, 80, 3)), None
        if name == colour or np.linalg.norm(np.subtract(bg, rgb)) < 110:
            continue
        return bg, name


def draw_shape(img, shape, cx, cy, r, rgb, angle=0.0, stretch=1.0):
    """A filled shape whose bounding box is about 2r wide; `stretch` varies squares' and triangles' proportions."""
    if shape == "circle":
        cv2.circle(img, (cx, cy), r, rgb, -1, cv2.LINE_AA)
        return
    if shape == "square":
        pts = np.array([(-1, -1), (1, -1), (1, 1), (-1, 1)], float) * r * min(stretch, 1.0)
    else:  # apex up; stretch 1 is base = height (what tests draw), 0.87 near equilateral
        pts = np.array([(0, -1), (stretch, 1), (-stretch, 1)], float) * r
    c, s = np.cos(angle), np.sin(angle)
    pts = pts @ np.array([[c, s], [-s, c]]) + (cx, cy)
    cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], rgb, cv2.LINE_AA, shift=4)


def random_picture(rng):
    """One filled shape on a plain background, at a random size, place, aspect ratio and resolution, lightly
    degraded."""
    ci, si = int(rng.integers(len(COLOURS))), int(rng.integers(len(SHAPES)))
    colour = COLOUR_NAMES[ci]
    rgb = jitter(rng, COLOURS[colour][rng.integers(len(COLOURS[colour]))], 12)
    bg, bg_name = pick_background(rng, colour, rgb)
    aspect = ASPECTS[rng.integers(len(ASPECTS))] * rng.uniform(0.95, 1.05)
    long_side = int(rng.integers(96, 641))
    w, h = (long_side, round(long_side / aspect)) if aspect >= 1 else (round(long_side * aspect), long_side)
    img = np.full((h, w, 3), bg, np.uint8)
    short = min(h, w)
    # Up to 80 %: the tests draw 70 %, and big dark shapes not seen in training read as the background.
    r = int(short * rng.uniform(0.2, 0.8) / 2)
    cx, cy = int(rng.integers(r, w - r + 1)), int(rng.integers(r, h - r + 1))
    draw_shape(img, SHAPES[si], cx, cy, r, rgb, np.deg2rad(rng.uniform(-15, 15)), rng.uniform(0.8, 1.1))
    return degrade(rng, img), ci, si, bg_name


def degrade(rng, img):
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), rng.uniform(0.3, 1.2))
    if rng.random() < 0.5:  # also stands in for video: OpenCV's JPEG subsamples chroma as yuv420p H.264 does
        img = jpeg(img, int(rng.integers(30, 90)))
    return img


def add_noise(rng, square):
    # Applied after fit_square: noise drawn at full resolution would be averaged away by the downscale (and is slow).
    if rng.random() < 0.5:
        noise = rng.normal(0, rng.uniform(1, 6), square.shape).astype(np.float32)
        square = np.clip(square + noise, 0, 255).astype(np.uint8)
    return square


def jpeg(rgb, quality):
    _, buf = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


CHUNK = 500  # pictures per worker task; fixed so the data set does not depend on the worker count


def make_chunk(seed_and_index):
    rng = np.random.default_rng(seed_and_index)
    squares, labels = np.empty((CHUNK, SIZE, SIZE, 3), np.uint8), np.empty((CHUNK, 3), np.int64)
    for i in range(CHUNK):
        img, ci, si, bg = random_picture(rng)
        squares[i] = add_noise(rng, fit_square(img, SIZE, MEAN))
        labels[i] = ci, si, BG_NAMES.index(bg) if bg else -1
    return squares, labels


def make_set(n, seed):
    """n fitted squares and their (colour, shape, background) labels; the same for any number of workers."""
    with multiprocessing.Pool(2) as pool:
        chunks = pool.map(make_chunk, [(seed, i) for i in range(-(-n // CHUNK))])
    return np.concatenate([c[0] for c in chunks])[:n], np.concatenate([c[1] for c in chunks])[:n]


def random_caption(rng, ci, si, bi):
    """Caption text and the attributes it pins down (-1 = left open): (colour, shape, background)."""
    c, s = COLOUR_NAMES[ci], SHAPES[si]
    r = rng.random()
    if r < 0.15:
        return COLOUR_TEMPLATES[rng.integers(len(COLOUR_TEMPLATES))].format(c=c), (ci, -1, -1)
    if r < 0.3:
        return SHAPE_TEMPLATES[rng.integers(len(SHAPE_TEMPLATES))].format(s=s), (-1, si, -1)
    if bi >= 0 and r < 0.45:
        return BG_TEMPLATES[rng.integers(len(BG_TEMPLATES))].format(c=c, s=s, b=BG_NAMES[bi]), (ci, si, bi)
    return FULL_TEMPLATES[rng.integers(len(FULL_TEMPLATES))].format(c=c, s=s), (ci, si, -1)


def contrastive_loss(img_f, txt_f, scale, labels, attrs):
    # Only 24 classes, so a batch holds many true pairs besides the diagonal: every caption whose
    # stated attributes all match an image is a positive for it, instead of a false negative.
    pos = torch.ones(len(labels), len(attrs), dtype=torch.bool)
    for k in range(3):
        pos &= (attrs[None, :, k] < 0) | (labels[:, None, k] == attrs[None, :, k])
    logits = scale * img_f @ txt_f.T
    pos = pos.float()
    i2t = -(F.log_softmax(logits, 1) * pos / pos.sum(1, keepdim=True)).sum(1).mean()
    t2i = -(F.log_softmax(logits, 0) * pos / pos.sum(0, keepdim=True)).sum(0).mean()
    return (i2t + t2i) / 2


@torch.no_grad()
def encode_images(model, squares, bs=256):
    feats = [model.encode_image(to_tensor_batch(list(squares[i:i + bs]), MEAN, STD), normalize=True)
             for i in range(0, len(squares), bs)]
    return torch.cat(feats)


@torch.no_grad()
def zero_shot(model, tok, squares, labels):
    """Accuracies (colour, shape, pair) of picking the best prompt among the candidates."""
    img = encode_images(model, squares)

    def predict(prompts):
        return (img @ model.encode_text(tok(prompts), normalize=True).T).argmax(1).numpy()

    colour = predict([f"a {c} shape" for c in COLOUR_NAMES])
    shape = predict([f"a {s}" for s in SHAPES])
    pair = predict([f"a {c} {s}" for c in COLOUR_NAMES for s in SHAPES])
    return ((colour == labels[:, 0]).mean(), (shape == labels[:, 1]).mean(),
            (pair == labels[:, 0] * len(SHAPES) + labels[:, 1]).mean())


def test_like_set():
    """Pictures drawn as tests/media.py draws them (its colours, a shape 70 % of the height in the middle of a
    320x180 frame or a square image), on white, black and grey, JPEG-compressed like a decoded video frame."""
    colours = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220), "yellow": (240, 220, 30),
               "orange": (245, 140, 20), "purple": (140, 40, 180), "white": (255, 255, 255), "black": (0, 0, 0)}
    backgrounds = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128)}
    squares, labels = [], []
    for ci, colour in enumerate(COLOUR_NAMES):
        for si, shape in enumerate(SHAPES):
            for bi, bg in enumerate(BG_NAMES):
                if colour == bg:
                    continue
                for w, h in ((320, 180), (224, 224)):
                    img = np.full((h, w, 3), backgrounds[bg], np.uint8)
                    draw_shape(img, shape, w // 2, h // 2, int(h * 0.35), colours[colour])
                    squares.append(fit_square(jpeg(img, 75), SIZE, MEAN))
                    labels.append((ci, si, bi))
    return np.stack(squares), np.array(labels)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="tests/tiny_clip/model")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--train-images", type=int, default=20000)
    args = ap.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(2)
    start = time.time()
    # A fixed pool, re-sampled every epoch: drawing fresh 640 px pictures every step would cost more than training.
    train_x, train_y = make_set(args.train_images, seed=0)
    test_x, test_y = make_set(2000, seed=1)
    print(f"generated data in {time.time() - start:.0f}s", flush=True)

    model = open_clip.CLIP(**MODEL_CFG).to(memory_format=torch.channels_last)  # ~25% faster convolutions on CPU
    tok = open_clip.tokenizer.SimpleTokenizer(context_length=MODEL_CFG["text_cfg"]["context_length"])
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=args.steps, pct_start=0.05)
    rng = np.random.default_rng(2)
    model.train()
    for step in range(args.steps):
        idx = rng.integers(len(train_x), size=args.batch)
        labels = torch.from_numpy(train_y[idx])
        caps = [random_caption(rng, *train_y[i]) for i in idx]
        attrs = torch.tensor([a for _, a in caps])
        images = to_tensor_batch(list(train_x[idx]), MEAN, STD).contiguous(memory_format=torch.channels_last)
        img_f = model.encode_image(images, normalize=True)
        txt_f = model.encode_text(tok([t for t, _ in caps]), normalize=True)
        loss = contrastive_loss(img_f, txt_f, model.logit_scale.exp().clamp(max=100), labels, attrs)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 250 == 0 or step == args.steps - 1:
            print(f"step {step} loss {loss.item():.3f} ({time.time() - start:.0f}s)", flush=True)

    model.eval()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG}, indent=2) + "\n")
    # float16 halves the file; open_clip casts back to float32 on load.
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, out / "open_clip_model.safetensors")

    # Evaluate what was written, through the same call the product and tests use.
    model, _, _ = open_clip.create_model_and_transforms(f"local-dir:{out}")
    tok = open_clip.get_tokenizer(f"local-dir:{out}")
    model.eval()
    for name, (x, y) in {"held-out": (test_x, test_y), "test-like": test_like_set()}.items():
        c, s, p = zero_shot(model, tok, x, y)
        print(f"{name} ({len(y)} images) zero-shot accuracy: colour {c:.1%}  shape {s:.1%}  colour+shape {p:.1%}")

    # vidsearch's minimum score for this model: midway between the caption cosines of matching and of
    # non-matching pictures, so that "no good match" means something with the test model too.
    x, y = test_x, test_y
    prompts = ([(f"a {c} {s}", ci, si) for ci, c in enumerate(COLOUR_NAMES) for si, s in enumerate(SHAPES)]
               + [(f"a {c} shape", ci, -1) for ci, c in enumerate(COLOUR_NAMES)]
               + [(f"a {s}", -1, si) for si, s in enumerate(SHAPES)])
    with torch.inference_mode():
        t = model.encode_text(tok([p for p, _, _ in prompts]), normalize=True)
    cos = encode_images(model, x) @ t.T
    fits = torch.tensor([[(pc in (-1, yc)) and (ps in (-1, ys)) for _, pc, ps in prompts] for yc, ys, *_ in y])
    match, other = cos[fits], cos[~fits]
    min_score = round(float(match.quantile(0.01) + other.quantile(0.99)) / 2, 2)
    print(f"caption cosine: matching p1 {match.quantile(0.01):.3f}, non-matching p99 {other.quantile(0.99):.3f}"
          f" -> vidsearch_min_score {min_score}")
    (out / "open_clip_config.json").write_text(json.dumps(
        {"model_cfg": MODEL_CFG, "preprocess_cfg": PREPROCESS_CFG, "vidsearch_min_score": min_score}, indent=2) + "\n")

    rng = np.random.default_rng(3)
    originals = [random_picture(rng)[0] for _ in range(300)]
    a = encode_images(model, np.stack([fit_square(im, SIZE, MEAN) for im in originals]))
    b = encode_images(model, np.stack([fit_square(jpeg(im, 50), SIZE, MEAN) for im in originals]))
    same, other = (a * b).sum(1), (a * b.roll(1, 0)).sum(1)
    print(f"image vs its JPEG (q50) cosine: mean {same.mean():.3f} min {same.min():.3f}; "
          f"vs another random image: mean {other.mean():.3f}")
    size = sum(f.stat().st_size for f in out.iterdir()) / 1e6
    print(f"wrote {out} ({size:.1f} MB) in {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
