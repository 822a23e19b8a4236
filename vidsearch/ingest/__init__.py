"""Indexing: bring an index up to date with folders of media.

    plan.py        what a run has to do: new or changed files, gone ones, ones still skipped
    runs.py        Run, a run's state and bookkeeping (pending sources, commits, skips, stalls, progress,
                   checkpoints, staging), its Report and Progress, and the WriterLock
    samples.py     where a frame is sampled, for both producers: decode, change gate, model input, thumbnail,
                   pixel signature, and the file's end (or why it cannot be indexed)
    local.py       the local producer: decode threads -> bounded queue -> batches -> embedder -> Run
    ray.py         the Ray producer: decode-and-embed worker actors -> Run (this process still writes the index)
    thumbnails.py  frame -> JPEG thumbnail, staged as a file until its source commits
    transcripts.py after a run (Index.add calls it): subtitles read and speech heard into the catalog's lines

`run` indexes locally; `run_ray` on Ray `Workers`. Both need the caller to hold the WriterLock.
"""
from .local import run
from .ray import Workers, check_address
from .ray import run as run_ray
from .runs import DECODE_TIMEOUT, LOCK_FILE, Progress, Report, Run, WriterLock

__all__ = ["DECODE_TIMEOUT", "LOCK_FILE", "Progress", "Report", "Run", "Workers", "WriterLock", "check_address",
           "run", "run_ray"]
