"""Generated test media: coloured shapes the tiny test CLIP has learned, drawn in RGB and encoded with ffmpeg. The
one copy lives in benchmarks/common.py, which the benchmarks use too (they must not import tests/)."""
from benchmarks.common import BACKGROUNDS, COLOURS, FFMPEG, draw, encode, segments_video

__all__ = ["BACKGROUNDS", "COLOURS", "FFMPEG", "draw", "encode", "segments_video"]
