"""How often a sampled frame's vector can be reused, and how close a reused vector stays to the model's own.

    python -m benchmarks.change [--models tiny,vitb32] [--sweep] [--real FILE ...] [--work DIR] [--quick]

Generates 720p30 H.264 footage (8 Mbit/s, keyframe every 1.5 s, as benchmarks.common `make_video`; the footage
is benchmarks.common `footage`, the footage the thresholds were chosen on):

  slides        still slides filmed with sensor noise: bullets appearing one by one, a word replaced, a shape
                recoloured at equal lightness, a title bar recoloured, cuts between slides
  slides-dark   the same deck with heavy sensor noise (a dim room)
  screencast    a noiseless screen recording: a line typed every 4 s, a pointer crossing the screen now and then
  camera        a fixed camera with sensor noise on a street: someone walks into the lower-left quarter, stands,
                leaves; a car passes; a small figure far away; a cut to a similar shot of the same street
  changing      always-changing content (FFmpeg's testsrc2 with noise)

samples it every second as vidsearch does (vidsearch.extract at the model's decode side), runs the model on every
sample (vidsearch.embed.Embedder.encode_images) and runs vidsearch.extract.change.ChangeGate over the samples in
order. For each footage kind and model it prints the fraction of samples whose vector would be reused, how many of
those show a different picture (before noise) than the sample whose vector they reuse, and the cosine between each
reused vector and the model's own vector for that sample (min, 1st and 5th percentile, median). The models: the
test model (tests/tiny_clip) and ViT-B-32 with random weights (benchmarks.common `random_vit_b32`).

`--sweep` shows how the thresholds were chosen: the largest differences that noise alone gives (the footage above,
and short clips through other codecs and bit rates: H.264 at 2 Mbit/s with heavy blotchy noise and at CRF 38,
MPEG-4 part 2, MJPEG), the smallest that meaningful changes give (changes that move a vector below cosine 0.99:
whole-frame colour and brightness shifts, a quarter of the frame recoloured, sharpening, blur, a 1-4 px move, a
zoom, a small disc appearing, a word replaced on a slide), and for a grid of thresholds the share of noise-only
pairs that would reuse, the share of meaningful changes caught and the smallest cosine of any pair let through.
`--real FILE ...` adds real videos to the table and their samples to the sweep's pictures (by hand: tests never
read them).

`--decode` times instead the decoder shortcuts of vidsearch/extract/frames.py on the same footage: CPU and wall
seconds of sampling each video, whether the samples keep their times and pixels, and for the shortcuts that change
pixels the smallest cosine between the vectors of a sample decoded both ways (`--models ""` skips that).
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import cv2
import numpy as np

from benchmarks.common import (
    FPS,
    TINY,
    X264,
    H,
    W,
    deck,
    footage,
    random_vit_b32,
    render,
    samples,
    street,
    table,
    untuned_footage,
)
from vidsearch.extract.change import ChangeGate, Thresholds, difference, signature


def blotchy(frame: np.ndarray, rng) -> np.ndarray:
    """Heavy sensor noise that is not white: grey grain 2 px across (sigma 19) and colour blotches 4 px across
    (sigma 6), as a small sensor in a dim room gives after demosaicing."""
    grey = cv2.resize(rng.normal(0, 12, (H // 2, W // 2)).astype(np.float32), (W, H))[..., None] * 1.6
    colour = cv2.resize(rng.normal(0, 6, (H // 4, W // 4, 3)).astype(np.float32), (W, H))
    return np.clip(frame + grey + colour, 0, 255).astype(np.uint8)


def text_slide(word: str) -> np.ndarray:
    """Small print (11 px high at 720p): one word of it is what changes."""
    img = np.full((H, W, 3), 250, np.uint8)
    cv2.rectangle(img, (0, 0), (W, 110), (40, 70, 160), -1)
    for i in range(6):
        cv2.putText(img, f"Line {i} of the slide text {word if i == 3 else 'same'} here", (80, 180 + 35 * i),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
    return img


def codec_clips(work: Path) -> dict[str, tuple[Path, list]]:
    """Short clips of five still pictures (4 s each; the last two differ by one word of small print) through
    other codecs, bit rates and noise."""
    work.mkdir(parents=True, exist_ok=True)
    view = street()[40:40 + H, 60:60 + W].copy()
    timeline = [(4, deck()[1][1]), (4, deck()[5][1]), (4, view), (4, text_slide("alpha")), (4, text_slide("omega"))]
    clips = {
        "x264 8M noise 8": ("c_8m.mp4", {"noise": 8}),
        "x264 8M blotchy": ("c_8m_blotchy.mp4", {"grain": blotchy}),
        "x264 2M blotchy": ("c_2m_blotchy.mp4", {"grain": blotchy, "codec": [*X264, "-b:v", "2M"]}),
        "x264 1M noise 12": ("c_1m.mp4", {"noise": 12, "codec": [*X264, "-b:v", "1M"]}),
        "x264 crf 38": ("c_crf38.mp4", {"codec": [*X264, "-crf", "38"]}),
        "mpeg4 q12 noise 8": ("c_mpeg4.avi", {"noise": 8, "codec": ["-c:v", "mpeg4", "-q:v", "12", "-g", "45"]}),
        "mjpeg q12 noise 8": ("c_mjpeg.avi", {"noise": 8, "codec": ["-c:v", "mjpeg", "-q:v", "12",
                                                                    "-pix_fmt", "yuvj420p"]}),
    }
    return {k: (render(work / name, timeline, **kw), timeline) for k, (name, kw) in clips.items()}


def truth(timeline: list | None, times: np.ndarray) -> list:
    """A label per sample: two samples have the same label when their pictures before noise and encoding are the
    same (a still picture repeated), different ones otherwise."""
    if timeline is None:
        return [("moving", i) for i in range(len(times))]
    labels, ends = [], np.cumsum([seconds for seconds, _ in timeline])
    for t in times:
        i = min(int(np.searchsorted(ends, t + 1e-6, side="right")), len(timeline) - 1)
        what, within = timeline[i][1], t - (ends[i] - timeline[i][0])
        if not callable(what):
            labels.append(id(what))
        elif hasattr(what, "key"):
            labels.append((id(what), what.key(within)))
        else:
            labels.append(("moving", i, round(within * FPS)))
    return labels


# -- measurement -----------------------------------------------------------------------------------------------

def encode(embedder, rgbs: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([embedder.encode_images(rgbs[i:i + 16]) for i in range(0, len(rgbs), 16)])


def run_gate(rgbs: list[np.ndarray], vecs: np.ndarray, labels: list | None, thresholds: Thresholds | None = None):
    """The gate over one source's samples in order: (samples embedded, cosines of the reused vectors to the
    model's own, reused samples whose picture differs from the one whose vector they reuse)."""
    gate = ChangeGate(thresholds)
    ref, cos, wrong = 0, [], 0
    for i, rgb in enumerate(rgbs):
        if gate.unchanged(rgb):
            cos.append(float(vecs[i] @ vecs[ref]))
            wrong += labels is not None and labels[i] != labels[ref]
        else:
            ref = i
    return gate.sampled - gate.reused, np.array(cos), wrong


def perturbations() -> list[tuple[str, object]]:
    """Changes of a picture, in graded strengths: (family and strength, function of the picture)."""
    def lab_shift(rgb, d, quarter=False):
        lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        h, w = rgb.shape[:2]
        region = (slice(h // 2, h), slice(0, w // 2)) if quarter else (slice(None), slice(None))
        lab[region] += np.array(d, np.float32)
        return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)

    def sharpen(rgb, k):
        return np.clip(rgb * (1 + k) - cv2.GaussianBlur(rgb, (0, 0), 1.5).astype(np.float32) * k + 0.5, 0,
                       255).astype(np.uint8)

    def zoom(rgb, f):
        h, w = rgb.shape[:2]
        ch, cw = round(h / f), round(w / f)
        crop = rgb[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
        return cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)

    def disc(rgb, frac, colour):
        out, (h, w) = rgb.copy(), rgb.shape[:2]
        r = int(np.sqrt(frac * h * w / np.pi))
        cv2.circle(out, (w * 2 // 3, h // 3), r, colour, -1, cv2.LINE_AA)
        return out

    def move(rgb, px):  # px at 448 px of height
        return np.ascontiguousarray(np.roll(rgb, max(1, round(px * rgb.shape[0] / 448)), axis=1))

    out = []
    for d, (axis, name), sign in itertools.product((1, 1.5, 2, 3), enumerate("Lab"), (1, -1)):
        v = [0.0, 0.0, 0.0]
        v[axis] = d * sign
        out.append((f"whole frame {name} {d * sign:+g}", lambda x, v=v: lab_shift(x, v)))
    for d in (3, 5, 8, 12):
        out.append((f"quarter b {d:+g}", lambda x, d=d: lab_shift(x, [0, 0, d], True)))
        out.append((f"quarter L {-d:+g}", lambda x, d=d: lab_shift(x, [-d, 0, 0], True)))
    out += [(f"blur {s}", lambda x, s=s: cv2.GaussianBlur(x, (0, 0), s * x.shape[0] / 448)) for s in (0.4, 0.8, 1.2)]
    out += [(f"sharpen {k}", lambda x, k=k: sharpen(x, k)) for k in (0.2, 0.35, 0.5, 0.8)]
    out += [(f"move {px} px", lambda x, px=px: move(x, px)) for px in (1, 2, 4)]
    out += [(f"zoom {f}", lambda x, f=f: zoom(x, f)) for f in (1.005, 1.01, 1.02)]
    out += [(f"disc {f:.1%} {c[0]}", lambda x, f=f, c=c: disc(x, f, c)) for f in (0.002, 0.005, 0.01, 0.02)
            for c in ((200, 40, 40), (128, 128, 128))]
    return out


def footage_pairs(name: str, footage_rgbs: dict, noise: list, changes: list) -> None:
    """Pairs of samples up to 8 s apart in the footage: same picture (noise) or not (a change)."""
    for kind, (rgbs, vecs, labels) in footage_rgbs.items():
        if labels is None:
            continue
        sigs = [signature(x) for x in rgbs]
        for i, j in ((a, b) for a in range(len(rgbs)) for b in range(max(0, a - 8), a)):
            d = difference(sigs[i], sigs[j])
            if labels[i] == labels[j]:
                noise.append((f"footage ({kind})", d))
            else:
                changes.append(("footage: different pictures", name, d, float(vecs[i] @ vecs[j])))


def codec_pairs(name: str, embedder, codec: dict, noise: list, changes: list) -> None:
    """Every pair of samples of the codec clips: same picture (noise) or one word apart (a change)."""
    for kind, (rgbs, labels, words) in codec.items():
        sigs = [signature(x) for x in rgbs]
        vecs = encode(embedder, rgbs)
        for i, j in itertools.combinations(range(len(rgbs)), 2):
            d = difference(sigs[i], sigs[j])
            if labels[i] == labels[j]:
                noise.append((kind, d))
            elif {labels[i], labels[j]} == words:
                changes.append(("a word of small print replaced", name, d, float(vecs[i] @ vecs[j])))


def perturbed_pairs(name: str, embedder, footage_rgbs: dict, picks: list, changes: list) -> None:
    pert = perturbations()
    for kind, idx in picks:
        rgbs, vecs, _ = footage_rgbs[kind]
        rgb, sig = rgbs[idx], signature(rgbs[idx])
        xs = [f(rgb) for _, f in pert]
        for (family, _), x, v in zip(pert, xs, encode(embedder, xs)):
            changes.append((family, name, difference(signature(x), sig), float(v @ vecs[idx])))


def sweep(models: dict, footage_rgbs: dict, codec: dict, picks: list) -> None:
    """The differences noise alone gives, those meaningful changes give, and what thresholds around the defaults
    would do."""
    noise, changes = [], []  # noise: (group, Difference); changes: (family, model, Difference, cosine)
    for name, embedder in models.items():
        generated = {k: v for k, v in footage_rgbs[name].items() if not k.startswith(("real:", "untuned:"))}
        footage_pairs(name, generated, noise, changes)
        codec_pairs(name, embedder, codec[name], noise, changes)
        perturbed_pairs(name, embedder, footage_rgbs[name], picks, changes)

    rows = []
    for g in sorted({g for g, _ in noise}):
        ds = np.array([d for gg, d in noise if gg == g])
        rows.append([g, len(ds), *(f"{ds[:, k].max():.3f}" for k in range(3))])
    table("Noise alone: largest difference between samples of the same still picture (both models' decode sizes)",
          ["source", "pairs", "shift", "tile", "detail"], rows)

    meaningful = [c for c in changes if c[3] < 0.99]
    words = [c for c in changes if c[0].startswith("a word")]
    rows = []
    for family in sorted({c[0].rsplit(" ", 1)[0] if c[0][-1].isdigit() else c[0] for c in meaningful}):
        cs = [c for c in meaningful if c[0].startswith(family)]
        rows.append([family, len(cs), f"{min(c[3] for c in cs):.3f}", *smallest(cs)])
    rows.append(["a word of small print replaced (any cosine)", len(words), f"{min(c[3] for c in words):.4f}",
                 *smallest(words)])
    table("Meaningful changes (a vector moved below cosine 0.99, either model): the smallest difference of each "
          "kind (each column on its own)", ["change", "pairs", "min cos", "shift", "tile", "detail"], rows)

    base = Thresholds()
    grid = sorted(set(itertools.product((1.0, base.shift, 2.0), (3.0, base.tile, 5.0),
                                        (0.2, base.detail, 0.5, float("inf")))))
    rows = []
    for s, t, d in grid:
        th = Thresholds(s, t, d)
        passed = [c for c in changes if c[2].within(th)]
        rows.append([f"{s:g} {t:g} {d:g}" + ("  (default)" if th == base else ""),
                     f"{np.mean([n.within(th) for _, n in noise]):.3f}",
                     f"{np.mean([not c[2].within(th) for c in meaningful]):.3f}",
                     f"{np.mean([not c[2].within(th) for c in words]):.2f}",
                     *(f"{min([c[3] for c in passed if c[1] == m] or [1.0]):.4f}" for m in models)])
    table("Thresholds (shift, tile, detail): noise-only pairs reused, meaningful changes caught, word changes "
          "caught, smallest cosine of a change let through",
          ["thresholds", "noise reused", "meaningful caught", "words caught", *(f"min cos {m}" for m in models)],
          rows)


def smallest(changes: list) -> list[str]:
    ds = np.array([c[2] for c in changes])
    return [f"{ds[:, k].min():.3f}" for k in range(3)]


# -- decoding --------------------------------------------------------------------------------------------------

DECODE_VARIANTS = [  # (label, frames.py settings, FFmpeg codec options)
    ("before: groups decoded until their marks are taken", {"PLAN": False, "SKIP_NONREF": False}, {}),
    ("+ groups planned from timestamps, drained", {"SKIP_NONREF": False}, {}),
    ("+ unsampled non-reference frames skipped (default)", {}, {}),
    ("  default, threads NONE", {"THREAD_TYPE": "NONE"}, {}),
    ("  default, threads SLICE", {"THREAD_TYPE": "SLICE"}, {}),
    ("  default, threads FRAME", {"THREAD_TYPE": "FRAME"}, {}),
    ("  default + skip_loop_filter all (changes pixels)", {}, {"skip_loop_filter": "all"}),
]


def decode_once(path: Path, side: int, settings: dict, options: dict) -> tuple[list, float, float]:
    """(samples, CPU seconds, wall seconds) of sampling `path` every second with frames.py's settings."""
    import time

    from vidsearch.extract import frames

    saved = {k: getattr(frames, k) for k in settings}
    for k, v in settings.items():
        setattr(frames, k, v)
    try:
        media = frames.open_media(str(path))
        if options:
            media._stream.codec_context.options = options  # applied when the decoder opens, on the first packet
        cpu, wall = time.process_time(), time.perf_counter()
        out = [(f.t, f.rgb) for f in media.frames(1.0, side)]
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        media.close()
    finally:
        for k, v in saved.items():
            setattr(frames, k, v)
    return out, cpu, wall


def min_cosine(embedder, a: list, b: list) -> float:
    """The smallest cosine between the vectors of the same samples in two decodings."""
    va, vb = encode(embedder, [x for _, x in a]), encode(embedder, [x for _, x in b])
    return float(np.min(np.sum(va * vb, axis=1)))


def part_decode(sources: dict, models: dict, repeats: int = 2) -> None:
    """CPU and wall seconds of sampling each video every second (at ViT-B-32's decode side, 448) with each decoder
    shortcut, the best of `repeats` runs; whether the samples keep their times and pixels, and for those that
    change pixels the smallest cosine between the vectors of the same sample decoded both ways."""
    rows = []
    for kind, (path, _) in sources.items():
        base = None
        for label, settings, options in DECODE_VARIANTS:
            runs = [decode_once(path, 448, settings, options) for _ in range(repeats)]
            out, cpu, wall = min(runs, key=lambda r: r[1])
            base = base or out
            same_t = [t for t, _ in out] == [t for t, _ in base]
            px = max(float(np.abs(a[1].astype(np.int16) - b[1]).mean()) for a, b in zip(out, base)) if same_t else None
            cos = " ".join(f"{m} {min_cosine(e, out, base):.4f}" for m, e in models.items()) if px else "-"
            rows.append([kind, label, len(out), f"{cpu:.2f}", f"{wall:.2f}", "yes" if same_t else "NO",
                         "-" if px is None else f"{px:.2f}", cos])
    table("Decoding: sampling every 1 s at 448 px (best of 2 runs); times and pixels against the first line",
          ["footage", "decoder", "samples", "CPU s", "wall s", "same times", "mean px diff (max)", "min cos"], rows)


def part_gate(models: dict, sources: dict) -> dict:
    """The gate over every source with each model; returns model → kind → (pictures, vectors, labels)."""
    got: dict[str, dict] = {}
    rows = []
    for name, embedder in models.items():
        got[name] = {}
        for kind, (path, timeline) in sources.items():
            times, rgbs = samples(path, embedder.decode_side)
            vecs = encode(embedder, rgbs)
            labels = None if kind.startswith("real:") else truth(timeline, times)
            got[name][kind] = (rgbs, vecs, labels)
            embedded, cos, wrong = run_gate(rgbs, vecs, labels)
            reused = len(rgbs) - embedded
            stats = ([f"{cos.min():.4f}", *(f"{np.percentile(cos, q):.4f}" for q in (1, 5, 50))] if len(cos)
                     else ["-"] * 4)
            rows.append([name, kind, len(rgbs), embedded, f"{reused / len(rgbs):.2f}",
                         "n/a" if labels is None else wrong, *stats])
    table("Change gate (default thresholds) on samples every 1 s: reused = no model pass; cosine of each reused "
          "vector to the model's own vector for that sample",
          ["model", "footage", "samples", "embedded", "reused", "reused, picture differs", "min cos", "p1", "p5",
           "median"], rows)
    return got


def part_sweep(work: Path, models: dict, sources: dict, got: dict) -> None:
    codec = {}
    clips = codec_clips(work / "codecs")
    for name, embedder in models.items():
        codec[name] = {}
        for kind, (path, timeline) in clips.items():
            times, rgbs = samples(path, embedder.decode_side)
            words = {id(timeline[-2][1]), id(timeline[-1][1])}
            codec[name][kind] = (rgbs, truth(timeline, times), words)
    picks = [("slides", 3), ("slides", 20), ("slides", 35), ("screencast", 5), ("camera", 5), ("camera", 16),
             ("changing", 3), ("changing", 30)]
    picks += [(k, len(got[next(iter(models))][k][0]) // 2) for k in sources if k.startswith("real:")]
    sweep(models, got, codec, picks)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="tiny,vitb32")
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--decode", action="store_true", help="time the decoder shortcuts (instead of the gate)")
    ap.add_argument("--real", nargs="*", default=[])
    ap.add_argument("--work", default=None, help="where generated footage is kept (default: a temporary folder)")
    ap.add_argument("--quick", action="store_true",
                    help="8 s of the untuned footage, the test model, one decode each (the sweep is not run)")
    args = ap.parse_args()
    import tempfile

    from vidsearch.embed import Embedder

    work = Path(args.work or tempfile.mkdtemp(prefix="vidsearch_change_"))
    sources = {} if args.quick else dict(footage(work / "footage"))
    # Footage the thresholds were not chosen on: measured beside, never part of the sweep.
    sources.update({f"untuned:{k}": v for k, v in untuned_footage(work / "footage", 8 if args.quick else 60).items()})
    sources.update({f"real:{Path(f).stem}": (Path(f), None) for f in args.real})
    paths = {"tiny": TINY, "vitb32": None}
    models = {name: Embedder(paths[name] or random_vit_b32(work / "vit_b32_random"))
              for name in ("tiny" if args.quick else args.models).split(",") if name}
    if args.decode or args.quick:
        part_decode(sources, models, repeats=1 if args.quick else 2)
        if not args.quick:
            return
    got = part_gate(models, sources)
    if args.sweep:
        part_sweep(work, models, sources, got)


if __name__ == "__main__":
    main()
