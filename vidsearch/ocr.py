"""Reading the words shown in frames: opt-in (`vidsearch index --ocr`), with `pip install 'vidsearch[ocr]'`.

RapidOCR runs PP-OCR's text detection and recognition on ONNX Runtime, offline (its models ship inside its wheel).
It finds lines of text; each is kept with its box as fractions (0-1) of the frame's width and height, so a player
can draw it over the video at any size. Reading a 720p frame costs one to two seconds of one CPU core
(benchmarks/ocr.py), so indexing reads only samples that changed (extract.change) and in worker threads beside the
embedder (`TextReaders`); a frame that cannot be read gets no words, and the run goes on.

Queries reach the words through `match_expression` (an SQLite FTS5 expression built from the query's words only,
so no query is FTS syntax) and `matched`, which picks out a frame's lines that hold the query's words.
"""
from __future__ import annotations

import logging
import re
import threading
import unicodedata
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from .errors import OcrMissing

log = logging.getLogger(__name__)

# With text read, frames are decoded with at least this many pixels on their short side (when they have them):
# the model's own input side is too small for captions and slide print.
OCR_SIDE = 720
# Text is looked for on the frame shrunk to this long side: 40 to 55 % less CPU than RapidOCR's default, with the
# same lines read on generated slides (benchmarks/ocr.py, part frame).
DETECT_SIDE = 960
MAX_LINE_HEIGHT = 0.5  # of the frame's height
MISSING = "Reading text in frames (--ocr) needs RapidOCR: pip install 'vidsearch[ocr]'."


@dataclass(frozen=True)
class Word:
    """A line of text read in a frame, and where: (x0, y0, x1, y1) as fractions of the frame's width and height."""

    text: str
    box: tuple[float, float, float, float]

    def as_json(self) -> dict:
        return {"text": self.text, "box": list(self.box)}


def require() -> None:
    """Raise OcrMissing (one sentence naming the extra) unless RapidOCR can be imported."""
    try:
        import rapidocr  # noqa: F401
    except ImportError:
        raise OcrMissing(MISSING) from None


class Reader:
    """One RapidOCR engine (one thread uses it at a time). Orientation classification is off: text in video is
    upright, and it would cost a model pass per line. Text is found on the frame shrunk to DETECT_SIDE on its long
    side, never enlarged (RapidOCR's default enlarges to 736 on the short side); lines are read at full size."""

    def __init__(self, threads: int = 1):
        require()
        from rapidocr import RapidOCR

        self._engine = RapidOCR(params={"Global.log_level": "error", "Global.use_cls": False,
                                        "Det.limit_type": "max", "Det.limit_side_len": DETECT_SIDE,
                                        "EngineConfig.onnxruntime.intra_op_num_threads": threads})

    def read(self, rgb: np.ndarray) -> list[Word]:
        h, w = rgb.shape[:2]
        out = self._engine(np.ascontiguousarray(rgb[:, :, ::-1]))  # it takes OpenCV's BGR
        if out.boxes is None:
            return []
        words = []
        for text, quad in zip(out.txts, out.boxes):
            x0, y0 = quad.min(axis=0)
            x1, y1 = quad.max(axis=0)
            box = (x0 / w, y0 / h, x1 / w, y1 / h)
            # A line of symbols only (a disc read as "●") can never match a query; a "line" taller than half the
            # frame was, on real photos, a shape taken for one glyph (a cup read as "8").
            if _tokens(text) and box[3] - box[1] <= MAX_LINE_HEIGHT:
                words.append(Word(text.strip(), tuple(round(min(max(float(v), 0.0), 1.0), 4) for v in box)))
        return words


class TextReaders:
    """OCR worker threads beside the embedder: `submit` a frame, get a Future of its words. At most `depth` frames
    wait or are being read, so memory stays bounded; ONNX Runtime releases the GIL, so reading runs alongside
    decoding and embedding. Each worker keeps its own engine."""

    def __init__(self, workers: int = 1, depth: int = 8):
        require()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="vidsearch-ocr")
        self._slots = threading.BoundedSemaphore(depth)
        self._local = threading.local()

    def submit(self, rgb: np.ndarray, timeout: float | None = None) -> Future | None:
        """The Future of the frame's words; None if no slot freed within `timeout` seconds."""
        if not self._slots.acquire(timeout=timeout):
            return None
        future = self._pool.submit(self._read, rgb)
        future.add_done_callback(lambda _: self._slots.release())
        return future

    def _read(self, rgb: np.ndarray) -> list[Word]:
        if getattr(self._local, "reader", None) is None:
            self._local.reader = Reader()
        try:
            return self._local.reader.read(rgb)
        except Exception as e:  # noqa: BLE001 - one frame OCR cannot read must not cost its file
            log.warning("could not read the text of a frame: %s: %s", type(e).__name__, e)
            return []

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _tokens(text: str) -> list[str]:
    """Words as SQLite's unicode61 tokenizer with remove_diacritics finds them: letters and digits, case and
    accents folded."""
    folded = "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))
    return re.findall(r"[^\W_]+", folded)


def query_terms(text: str | None) -> list[list[str]]:
    """What a query asks to see on screen, as lists of words that must appear in this order: each "quoted phrase"
    when the query has any (its other words are left to CLIP), else each of its words."""
    if not text:
        return []
    phrases = re.findall(r'"([^"]*)"', text)
    if phrases:
        return [t for t in (_tokens(p) for p in phrases) if t]
    return [[w] for w in _tokens(text)]


def match_expression(terms: list[list[str]]) -> str | None:
    """An FTS5 expression requiring every term. Made only of quoted tokens of letters and digits, so nothing a
    user types is read as FTS5 syntax."""
    return " AND ".join('"' + " ".join(t) + '"' for t in terms) or None


def matched(words: list[dict], terms: list[list[str]]) -> list[dict]:
    """The lines among a frame's `words` that hold a word of the query's terms."""
    wanted = {w for t in terms for w in t}
    return [w for w in words if wanted & set(_tokens(w["text"]))]
