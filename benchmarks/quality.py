"""vidsearch retrieval quality: text->moment and text->video recall on a labelled set of captioned video spans.

    python -m benchmarks.quality VIDEOS CAPTIONS [--model NAME] [--pretrained TAG] [--index DIR] [--interval S]
                                 [--rank-k N] [--limit N] [--json]
    python -m benchmarks.quality [--generate] [--videos 60] [--work DIR] [--json] [--quick]
                                 # offline: a generated set, the test model (--quick: 6 videos)

CAPTIONS holds rows of (video, start, end, caption) as JSONL, a JSON list, CSV/TSV or Charades-STA's own text
lines (`VID START END##sentence`). Column names of Charades-STA, QVHighlights, ActivityNet Captions and
MSR-VTT-style files are understood (video/vid/video_id, start/end or a [start, end] pair such as timestamp or
relevant_windows, caption/query/sentence); a video is named by its path, file name or stem relative to VIDEOS, and a
row without times means the whole video (MSR-VTT). Only the referenced videos are indexed (an existing --index is
reused: unchanged files are not embedded again).

For every caption, through the public vidsearch.Index API only:
- text->moment: `search(caption, k=rank_k, per_video=0, min_score=-1)`; a moment is a hit when it is in the labelled
  video and its span overlaps a labelled span with temporal IoU >= 0.3 (and, separately, >= 0.5). R@1/5/10 and the
  median rank of the first hit. Only rows with times count.
- in its video (known-video grounding, what Charades-STA and QVHighlights papers report): the labelled video's own
  moments, best first, from `Index.video(source_id, caption, min_score=-1)`; same IoU rule.
- text->video: videos ranked by their best moment (`per_video=1`, k = every indexed video): R@1/5/10, median rank.
- latency: p50/p95 of `search(caption, k=10, per_video=0, min_score=-1)`, timed once per distinct caption (the
  first call for a text includes its text-encoder pass; later ones come from the embedder's small text cache).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import TINY as TEST_MODEL
from benchmarks.common import segments_video

IOUS = (0.3, 0.5)
RECALL_AT = (1, 5, 10)


# -- captions ----------------------------------------------------------------------------------------------------

def _norm(key: str) -> str:
    return re.sub(r"[^a-z0-9]", "", key.lower())


VIDEO_KEYS = ["video", "vid", "videoid", "videoname", "videopath", "videofile", "clipid", "clip", "clipname",
              "file", "filename", "path", "youtubeid"]
CAPTION_KEYS = ["caption", "query", "sentence", "text", "description", "desc", "captions", "sentences", "queries"]
START_KEYS = ["start", "starttime", "tstart", "begin", "startsec", "startseconds", "startframe"]
END_KEYS = ["end", "endtime", "tend", "stop", "endsec", "endseconds"]
SPAN_KEYS = ["timestamp", "timestamps", "times", "span", "spans", "window", "windows", "relevantwindows", "segment",
             "segments", "moment", "moments", "gtwindows", "gt"]
CHARADES_LINE = re.compile(r"^\s*(\S+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s*##(.*)$")
NUMBER = re.compile(r"-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?")


@dataclass
class Caption:
    video: str  # as written in CAPTIONS
    text: str
    spans: list[tuple[float, float]] | None  # None: the whole video
    line: int
    path: str = ""  # resolved absolute path


def _pick(row: dict, keys: list[str]):
    normed = {_norm(k): v for k, v in row.items() if k is not None}
    for k in keys:
        v = normed.get(k)
        if v is not None and v != "":
            return v
    return None


def _spans(value) -> list[tuple[float, float]]:
    """[s, e], [[s, e], ...], "s e", "[s, e]" or "s-e" -> [(s, e), ...]."""
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*-\s*(\d+(?:\.\d*)?)\s*", value)
        nums = [float(x) for x in (m.groups() if m else NUMBER.findall(value))]
    else:
        flat = np.asarray(value, dtype=float).ravel() if len(value) else np.zeros(0)
        nums = [float(x) for x in flat]
    if len(nums) < 2 or len(nums) % 2:
        raise ValueError(f"cannot read a [start, end] span from {value!r}")
    return [(min(a, b), max(a, b)) for a, b in zip(nums[::2], nums[1::2])]


def _rows_of(path: Path) -> list[tuple[int, dict]]:
    """(line number, row dict) from JSONL, JSON, CSV/TSV or Charades-STA text."""
    text = path.read_text(encoding="utf-8-sig")
    stripped = text.lstrip()
    if stripped.startswith("[") or (stripped.startswith("{") and path.suffix.lower() == ".json"):
        rows = _json_rows(text)
        if rows is not None:
            return rows
    if stripped.startswith("{"):
        return [(n, json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    lines = text.splitlines()
    if lines and all(CHARADES_LINE.match(ln) for ln in lines[:5] if ln.strip()):
        return [(n, {"video": m[1], "start": m[2], "end": m[3], "caption": m[4].strip()})
                for n, m in enumerate(map(CHARADES_LINE.match, lines), 1) if m]
    try:
        dialect = csv.Sniffer().sniff("\n".join(lines[:20]), delimiters=",\t;|")
    except csv.Error:
        dialect = csv.excel_tab if path.suffix.lower() == ".tsv" else csv.excel
    return [(n + 2, r) for n, r in enumerate(csv.DictReader(io.StringIO(text), dialect=dialect))]


def _json_rows(text: str) -> list[tuple[int, dict]] | None:
    """Rows of a JSON document (a list, a dict holding one, or ActivityNet's layout); None if it is not JSON."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict):
        for key in ("sentences", "annotations", "data", "database", "queries", "captions"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:  # ActivityNet Captions layout: {video_id: {"timestamps": [...], "sentences": [...]}}
            data = [{"video": k, **v} for k, v in data.items() if isinstance(v, dict)]
    return [(i + 1, r) for i, r in enumerate(data) if isinstance(r, dict)]


def load_captions(path: Path) -> list[Caption]:
    out = []
    for line, row in _rows_of(path):
        video = _pick(row, VIDEO_KEYS)
        texts = _pick(row, CAPTION_KEYS)
        if video is None or texts is None:
            raise ValueError(f"{path}:{line}: no video or caption column in {sorted(row)}")
        start, end, span = _pick(row, START_KEYS), _pick(row, END_KEYS), _pick(row, SPAN_KEYS)
        try:
            if start is not None and end is not None:
                spans = [(min(float(start), float(end)), max(float(start), float(end)))]
            elif span is not None:
                spans = _spans(span)
            else:
                spans = None
        except (TypeError, ValueError) as e:
            raise ValueError(f"{path}:{line}: {e}") from None
        if isinstance(texts, list):
            # ActivityNet: one span per sentence; otherwise every sentence names the same span(s).
            per = (spans is not None and isinstance(span, list) and len(spans) == len(texts) and len(texts) > 1)
            for i, t in enumerate(texts):
                out.append(Caption(str(video), str(t).strip(), [spans[i]] if per else spans, line))
        else:
            out.append(Caption(str(video), str(texts).strip(), spans, line))
    return [c for c in out if c.text]


def video_finder(folder: Path):
    """A function from a name in CAPTIONS (relative path, file name or stem, with or without extension) to a path."""
    names: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.startswith("."):
                continue
            p = Path(dirpath) / f
            rel = p.relative_to(folder).as_posix()
            for key in (rel, str(Path(rel).with_suffix("")), f, p.stem):
                names.setdefault(key, os.path.realpath(p))
                names.setdefault(key.lower(), os.path.realpath(p))

    def find(name: str) -> str | None:
        name = name.strip()
        if os.path.isfile(name):
            return os.path.realpath(name)
        for key in (name, name.lower(), Path(name).name, Path(name).stem, Path(name).name.lower(),
                    Path(name).stem.lower()):
            if key in names:
                return names[key]
        return None

    return find


# -- the generated set -------------------------------------------------------------------------------------------

def generate(folder: Path, n_videos: int = 60, seed: int = 0) -> Path:
    """n_videos short videos of 4 coloured-shape segments each (1.5 to 4 s, so that some boundaries fall between
    1 s samples), on white, grey or black; colour/shape pairs come from a pool of 14, so most appear in 2-4 videos.
    One caption per segment, worded like the test model's training captions: mostly "a red circle" (ambiguous
    across videos), a quarter naming the background too ("... on a grey background"), plus one shape-only caption
    per video ("a circle", for a shape that appears once in that video; many other videos show one too).
    Writes folder/videos/*.mp4 and folder/captions.jsonl, and returns the latter. What it measures is the tiny
    test model on the kind of pictures it was trained on: a check that search ranks what the model tells apart,
    not a figure for a real model on real footage."""
    rng = np.random.default_rng(seed)
    colours = ["red", "green", "blue", "yellow", "orange", "purple", "white", "black"]
    combos = [(c, s) for c in colours for s in ("circle", "square", "triangle")]
    pool = [combos[i] for i in rng.choice(len(combos), 14, replace=False)]
    backgrounds = ["white"] * 5 + ["grey"] * 3 + ["black"] * 2
    wordings = ["a {c} {s}", "a {c} {s}", "a photo of a {c} {s}", "a {c} {s} on a {b} background"]
    rows = []
    (folder / "videos").mkdir(parents=True, exist_ok=True)
    for v in range(n_videos):
        bg = backgrounds[v % len(backgrounds)]
        usable = [i for i, (c, _) in enumerate(pool) if c != bg]
        picks = [pool[i] for i in rng.choice(usable, 4, replace=False)]
        # segments_video shows each segment for round(seconds × 25) frames: label the spans the frames really have.
        durations = [round(float(x) * 25) / 25 for x in rng.choice([1.5, 2.0, 2.5, 3.0, 4.0], 4)]
        name = f"clip{v:02d}.mp4"
        segments_video(folder / "videos" / name, [(d, s, c) for d, (c, s) in zip(durations, picks)], background=bg)
        starts = np.concatenate([[0.0], np.cumsum(durations)])
        for i, (c, s) in enumerate(picks):
            text = wordings[int(rng.integers(len(wordings)))].format(c=c, s=s, b=bg)
            rows.append({"video": name, "start": round(starts[i], 3), "end": round(starts[i + 1], 3), "caption": text})
        shapes = [s for _, s in picks]
        single = [i for i, s in enumerate(shapes) if shapes.count(s) == 1]
        if single:
            i = single[int(rng.integers(len(single)))]
            rows.append({"video": name, "start": round(starts[i], 3), "end": round(starts[i + 1], 3),
                         "caption": f"a {shapes[i]}"})
    captions = folder / "captions.jsonl"
    captions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return captions


# -- scoring -----------------------------------------------------------------------------------------------------

def tiou(a: tuple[float, float], b: tuple[float, float]) -> float:
    inter = min(a[1], b[1]) - max(a[0], b[0])
    union = max(a[1], b[1]) - min(a[0], b[0])
    return max(inter, 0.0) / union if union > 0 else 0.0


def summarise(ranks: list[float], limit: int | None) -> dict:
    """Recall@K (as fractions) and the median rank (None when it lies beyond the `limit` ranks looked at, or with
    limit None, when most queries have no hit at all)."""
    r = np.asarray(ranks, dtype=float)
    out = {f"R@{k}": float(np.mean(r <= k)) if len(r) else None for k in RECALL_AT}
    med = float(np.median(r)) if len(r) else math.inf
    out["median_rank"] = med if math.isfinite(med) else None
    out["median_rank_beyond"] = None if math.isfinite(med) else limit
    out["n"] = len(r)
    return out


def _finite(rank: float) -> int | None:
    return int(rank) if math.isfinite(rank) else None


def evaluate(index, captions: list[Caption], rank_k: int, progress: bool) -> dict:
    videos = [s for s in index.sources() if s.kind == "video"]
    duration = {s.path: s.duration for s in videos}
    source_id = {s.path: s.id for s in videos}
    n_videos = max(len(videos), 1)
    index.search("warm up", k=1, per_video=0, min_score=-1)  # model load, not query latency
    by_text: dict[str, list[Caption]] = {}
    for c in captions:
        by_text.setdefault(c.text, []).append(c)
    moment_ranks: dict[float, list[float]] = {iou: [] for iou in IOUS}
    ground_ranks: dict[float, list[float]] = {iou: [] for iou in IOUS}
    video_ranks: list[float] = []
    latencies = []
    details = []
    t0 = time.perf_counter()
    for n, (text, rows) in enumerate(by_text.items(), 1):
        t = time.perf_counter()
        index.search(text, k=10, per_video=0, min_score=-1)
        latencies.append(time.perf_counter() - t)
        moments = index.search(text, k=rank_k, per_video=0, min_score=-1)
        ranked_videos = [h.source for h in index.search(text, k=n_videos, per_video=1, min_score=-1)
                         if h.kind == "video"]
        top = moments[0] if moments else None
        for c in rows:
            video_ranks.append(ranked_videos.index(c.path) + 1 if c.path in ranked_videos else math.inf)
            d = {"video": c.video, "caption": c.text, "spans": c.spans, "video_rank": _finite(video_ranks[-1]),
                 "top1": None if top is None else {"video": os.path.basename(top.source), "start": top.start,
                                                   "end": top.end, "score": round(top.score, 4)}}
            details.append(d)
            if c.spans is None:
                continue
            spans = [(s, min(e, duration.get(c.path, e) or e)) for s, e in c.spans]
            _, in_video = index.video(source_id[c.path], text, min_score=-1)
            for iou in IOUS:
                rank = next((i for i, h in enumerate(moments, 1) if h.source == c.path
                             and max(tiou((h.start, h.end), s) for s in spans) >= iou), math.inf)
                moment_ranks[iou].append(rank)
                d[f"moment_rank_iou{iou}"] = _finite(rank)
                rank = next((i for i, h in enumerate(in_video, 1)
                             if max(tiou((h.start, h.end), s) for s in spans) >= iou), math.inf)
                ground_ranks[iou].append(rank)
                d[f"in_video_rank_iou{iou}"] = _finite(rank)
        if progress and (n % 100 == 0 or n == len(by_text)):
            print(f"  {n}/{len(by_text)} distinct captions, {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    ms = np.asarray(latencies) * 1000
    return {
        "moment": {f"IoU>={iou}": summarise(moment_ranks[iou], rank_k) for iou in IOUS},
        "moment_in_video": {f"IoU>={iou}": summarise(ground_ranks[iou], None) for iou in IOUS},
        "video": summarise(video_ranks, n_videos),
        "latency_ms": {"p50": float(np.percentile(ms, 50)), "p95": float(np.percentile(ms, 95)),
                       "queries": len(ms), "k": 10},
        "per_caption": details,  # ranks are null beyond the results looked at
    }


# -- output ------------------------------------------------------------------------------------------------------

def table(res: dict) -> str:
    def pct(x):
        return "   n/a" if x is None else f"{100 * x:5.1f}%"

    def med(s):
        if s["n"] == 0:
            return "n/a"
        if s["median_rank"] is None:
            return f">{s['median_rank_beyond']}" if s["median_rank_beyond"] else "no hit"
        return f"{s['median_rank']:g}"

    m, d = res["setup"], res["data"]
    model = f"{m['model']} ({m['pretrained']})" if m["pretrained"] else m["model"]
    setup = f"model {model}, one frame every {m['interval']:g} s; index {m['index']}"
    data = (f"{d['captions']} captions ({d['timed']} with times, {d['distinct']} distinct texts) over "
            f"{d['videos']} videos ({d['frames']} frames indexed, {d['index_seconds']:.1f} s to index)")
    lines = [setup, data]
    if m["generated"]:
        lines.append(f"(generated set: the tiny test model on coloured shapes, the pictures it was trained on; a video "
                     f"picked at random is in the top 10 of {d['videos']} with chance {min(1, 10 / d['videos']):.0%})")
    if d["missing"]:
        lines.append(f"{d['missing']} captions skipped: their video was not found under VIDEOS or not indexed")
    lines += ["", f"{'':30}{'R@1':>8}{'R@5':>8}{'R@10':>8}{'median rank':>14}{'queries':>9}"]

    def row(name, s):
        return f"{name:30}{pct(s['R@1']):>8}{pct(s['R@5']):>8}{pct(s['R@10']):>8}{med(s):>14}{s['n']:>9}"

    for iou, s in res["moment"].items():
        lines.append(row(f"text->moment {iou.replace('IoU>=', 'tIoU>=')}", s))
    for iou, s in res["moment_in_video"].items():
        lines.append(row(f"  in its video {iou.replace('IoU>=', 'tIoU>=')}", s))
    lines.append(row("text->video", res["video"]))
    lt = res["latency_ms"]
    latency = (f"Index.search latency (k=10, per_video=0, min_score=-1, first call per distinct caption, "
               f"{lt['queries']} queries): p50 {lt['p50']:.1f} ms, p95 {lt['p95']:.1f} ms")
    lines += ["", latency]
    return "\n".join(lines)


def _progress(p, _shown: set = set()) -> None:  # noqa: B006 (the set remembers what was printed)
    if p.files_done and (p.files_done % 50 == 0 or p.files_done == p.files_total) and p.files_done not in _shown:
        _shown.add(p.files_done)
        print(f"  {p.files_done}/{p.files_total} files, {p.frames} frames, {p.seconds:.0f} s", file=sys.stderr)


def _arguments(argv) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("videos", nargs="?", help="folder of the videos")
    ap.add_argument("captions", nargs="?", help="JSONL/JSON/CSV/TSV/Charades-STA file of (video, start, end, caption)")
    ap.add_argument("--generate", action="store_true", help="build a labelled set offline with the test model")
    ap.add_argument("--work", help="with --generate: keep the generated videos and captions here")
    ap.add_argument("--videos", type=int, default=60, dest="n_videos",
                    help="with --generate: how many videos (default 60, so that text->video R@10 can fail)")
    ap.add_argument("--quick", action="store_true", help="with --generate: 6 videos (seconds; figures mean nothing)")
    ap.add_argument("--model", help="open_clip model (default: vidsearch's; with --generate: the test model)")
    ap.add_argument("--pretrained")
    ap.add_argument("--index", help="index folder to create or reuse (default: a temporary one, deleted after)")
    ap.add_argument("--interval", type=float, help="seconds between samples for a new index (default 1)")
    ap.add_argument("--rank-k", type=int, default=100, help="moments fetched to find a moment's rank (default 100)")
    ap.add_argument("--limit", type=int, help="evaluate only the first N captions")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    args = ap.parse_args(argv)
    if bool(args.videos) != bool(args.captions):
        ap.error("give both VIDEOS and CAPTIONS, or neither (--generate)")
    args.generated = args.generate or not args.videos
    if args.generated and args.videos:
        ap.error("--generate takes no VIDEOS or CAPTIONS")
    if args.videos and not Path(args.videos).is_dir():
        ap.error(f"{args.videos} is not a folder")
    if args.quick:
        args.n_videos = 6
    return args


def _labelled_set(args, cleanup: list) -> tuple[Path, Path, str | None]:
    """(videos folder, captions file, model): the user's, or a set generated for the test model."""
    if not args.generated:
        return Path(args.videos), Path(args.captions), args.model
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="vidsearch-quality-"))
    if not args.work:
        cleanup.append(work)
    t = time.perf_counter()
    captions_path = generate(work, args.n_videos)

    videos_dir = work / "videos"
    print(f"generated {len(list(videos_dir.iterdir()))} videos in {time.perf_counter() - t:.1f} s under {work}",
          file=sys.stderr)
    return videos_dir, captions_path, args.model or TEST_MODEL


def _captions(captions_path: Path, videos_dir: Path, limit: int | None) -> list[Caption]:
    captions = load_captions(captions_path)[:limit] if limit else load_captions(captions_path)
    find = video_finder(videos_dir)
    for c in captions:
        c.path = find(c.video) or ""
    unresolved = sorted({c.video for c in captions if not c.path})
    if unresolved:
        print(f"{len(unresolved)} videos named in {captions_path} not found under {videos_dir}, e.g. "
              f"{', '.join(unresolved[:5])}", file=sys.stderr)
    return captions


def _measure(index, captions: list[Caption], args, videos_dir: Path, captions_path: Path) -> dict | None:
    """Index the captioned videos, then evaluate; None if none could be indexed."""
    wanted = sorted({c.path for c in captions if c.path})
    print(f"indexing {len(wanted)} videos into {index.path} ...", file=sys.stderr)
    t = time.perf_counter()
    report = index.add(wanted, progress=_progress if len(wanted) > 20 else None)
    index_s = time.perf_counter() - t
    for p, why in report.skipped[:10]:
        print(f"  skipped {p}: {why}", file=sys.stderr)
    indexed = {s.path for s in index.sources() if s.kind == "video"}
    ok = [c for c in captions if c.path in indexed]
    if not ok:
        return None
    st = index.stats()
    res = {"setup": {"model": index.model, "pretrained": index.pretrained, "interval": index.interval,
                     "index": str(index.path), "rank_k": args.rank_k,
                     "videos": str(videos_dir), "captions": str(captions_path), "generated": args.generated},
           "data": {"captions": len(ok), "timed": sum(c.spans is not None for c in ok),
                    "distinct": len({c.text for c in ok}), "missing": len(captions) - len(ok),
                    "videos": st.videos, "frames": st.frames, "index_seconds": round(index_s, 2),
                    "frames_added": report.frames_added}}
    res.update(evaluate(index, ok, args.rank_k, progress=len(ok) > 200))
    return res


def main(argv=None) -> int:
    args = _arguments(argv)
    from vidsearch import Index, IndexMismatch

    cleanup: list[Path] = []
    try:
        videos_dir, captions_path, model = _labelled_set(args, cleanup)
        try:
            captions = _captions(captions_path, videos_dir, args.limit)
        except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
            print(f"Cannot read {captions_path}: {e}", file=sys.stderr)
            return 2
        if not any(c.path for c in captions):
            print("No captioned video found: nothing to evaluate.", file=sys.stderr)
            return 1
        if args.index:
            index_dir = Path(args.index)
        else:
            index_dir = Path(tempfile.mkdtemp(prefix="vidsearch-quality-index-")) / "index"
            cleanup.append(index_dir.parent)
        try:
            index = Index(index_dir, model=model, pretrained=args.pretrained, interval=args.interval)
        except IndexMismatch as e:
            print(e, file=sys.stderr)
            return 2
        with index:
            res = _measure(index, captions, args, videos_dir, captions_path)
        if res is None:
            print("None of the captioned videos could be indexed.", file=sys.stderr)
            return 1
        print(json.dumps(res, indent=2) if args.json else table(res))
        return 0
    finally:
        for p in cleanup:
            shutil.rmtree(p, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
