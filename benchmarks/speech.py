"""What reading subtitles and hearing speech cost, and how well each engine hears real recordings.

    python -m benchmarks.speech [--quick] [--audio DIR] [--whisper MODEL ...] [--sizes tiny,base,small]

Recordings: the LibriVox clips (public domain, read English, with their transcripts) that PocketSphinx's source
package ships in test/data/librivox; without --audio they are fetched once with
`pip download --no-deps --no-binary :all: pocketsphinx` into ~/.cache/vidsearch-bench.

wer       word error rate of each engine on the clips (pocketsphinx; each --whisper MODEL that can be loaded here:
          a Whisper size in the Hugging Face cache or a folder)
video     CPU seconds (this process and ffmpeg) that `speech.transcribe_video` takes on a generated video whose
          sound is the clips over and over with pauses (1 minute with --quick, else 5), as seconds per hour of
          video; the audio decoding alone the same way
sizes     the same per-hour CPU cost for Whisper models of the real tiny/base/small dimensions with random weights
          (written offline with transformers), made to decode TOKENS_PER_WINDOW tokens per 30 s window, about what
          speech at 150 words a minute takes, one window after the other: a stand-in for the real models' cost
          where they cannot be downloaded
subtitles CPU seconds to read a 2-hour SRT file of 2,400 cues
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tarfile
import tempfile
import wave
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from benchmarks.common import random_whisper
from vidsearch import speech
from vidsearch.errors import ModelLoadError
from vidsearch.extract.subtitles import read_sidecar

HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "vidsearch-bench"
TOKENS_PER_WINDOW = 100
# Whisper's published dimensions: (layers, width, heads).
SIZES = {"tiny": (4, 384, 6), "base": (6, 512, 8), "small": (12, 768, 12)}


def cpu() -> float:
    """CPU seconds of this process and its finished children (ffmpeg) so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def librivox(folder: Path | None) -> list[tuple[Path, str]]:
    """[(wav, transcript)] of the LibriVox clips, fetched into the cache unless `folder` holds them."""
    if folder is None:
        folder = CACHE / "librivox"
        if not folder.is_dir():
            CACHE.mkdir(parents=True, exist_ok=True)
            subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                            "-d", str(CACHE), "pocketsphinx==5.1.1"], check=True)
            with tarfile.open(CACHE / "pocketsphinx-5.1.1.tar.gz") as tar:
                members = [m for m in tar.getmembers() if "/test/data/librivox/" in m.name
                           and m.name.endswith((".wav", ".txt"))]
                for m in members:
                    m.name = Path(m.name).name
                tar.extractall(folder, members, filter="data")
    return [(w, w.with_suffix(".txt").read_text().strip()) for w in sorted(folder.glob("*.wav"))]


def duration(wav: Path) -> float:
    with wave.open(str(wav)) as w:
        return w.getnframes() / w.getframerate()


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def wer(refs: list[str], hyps: list[str]) -> float:
    """Word error rate: word edits (substitutions, insertions, deletions) over reference words, all clips."""
    edits = total = 0
    for ref, hyp in zip(refs, hyps):
        r, h = words(ref), words(hyp)
        row = list(range(len(h) + 1))
        for i, rw in enumerate(r, 1):
            prev, row[0] = row[0], i
            for j, hw in enumerate(h, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (rw != hw))
        edits, total = edits + row[-1], total + len(r)
    return edits / total


def long_video(folder: Path, clips: list[tuple[Path, str]], minutes: float) -> Path:
    """A video (a still picture) whose sound is the clips over and over with 1 s pauses, `minutes` long."""
    parts, n, rate = [], 0, 16000
    while n < minutes * 60 * rate:
        for path, _ in clips:
            with wave.open(str(path)) as w:
                rate = w.getframerate()
                parts += [np.frombuffer(w.readframes(w.getnframes()), np.int16), np.zeros(rate, np.int16)]
                n += w.getnframes() + rate
    wav = folder / "long.wav"
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(np.concatenate(parts)[:int(minutes * 60 * rate)].tobytes())
    out = folder / "long.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=gray:s=320x180:r=1", "-i", str(wav), "-shortest", "-c:v", "libx264", "-c:a", "aac",
                    str(out)], check=True)
    return out


def per_hour(run, seconds: float) -> float:
    c0 = cpu()
    run()
    return (cpu() - c0) * 3600 / seconds


def engines(names: list[str]) -> list:
    out = [speech.engine("pocketsphinx")]
    for name in names:
        try:
            out.append(speech.engine(f"whisper:{name}"))
        except ModelLoadError as e:
            print(f"  whisper:{name} left out: {e}")
    return out


def bench_engines(engs, clips, video: Path, seconds: float) -> None:
    refs = [t for _, t in clips]
    print(f"\n{'engine':<28} {'WER':>6} {'CPU s per hour of video':>24}")
    for eng in engs:
        hyps = [" ".join(s.text for s in eng.transcribe(p)) for p, _ in clips]
        cost = per_hour(lambda e=eng: speech.transcribe_video(video, e), seconds)
        print(f"{eng.name:<28} {wer(refs, hyps):>6.1%} {cost:>24.0f}")
    decode = per_hour(lambda: sum(len(c) for _, c in speech.pcm(video, 30)), seconds)
    print(f"{'(audio decoding alone)':<28} {'':>6} {decode:>24.1f}")


def bench_sizes(sizes: list[str], folder: Path, video: Path, seconds: float) -> None:
    """Per-hour cost of Whisper-sized models with random weights, made to decode TOKENS_PER_WINDOW tokens."""
    print(f"\n{'random-weight size':<28} {'CPU s per hour of video':>31}")
    for size in sizes:
        layers, width, heads = SIZES[size]
        path = random_whisper(folder / size, layers=layers, width=width, heads=heads, words=50353)
        eot = 50354  # after [UNK] and the words: never chosen, so each window decodes TOKENS_PER_WINDOW tokens
        eng = speech.Whisper(str(path), options={
            "temperature": 0.0, "suppress_tokens": [eot], "max_new_tokens": TOKENS_PER_WINDOW,
            "without_timestamps": True,  # random timestamps would make it skip ahead or step back at random
            "compression_ratio_threshold": None, "log_prob_threshold": None, "no_speech_threshold": None})
        cost = per_hour(lambda e=eng: speech.transcribe_video(video, e), seconds)
        print(f"{size:<28} {cost:>31.0f}")


def bench_subtitles(folder: Path) -> None:
    cue = "{n}\n{t}\nA line of dialogue number {n}, <i>in italics</i> now and then.\n\n"
    stamp = "{:02d}:{:02d}:{:02d},000 --> {:02d}:{:02d}:{:02d},500"
    text = "".join(cue.format(n=n, t=stamp.format(n // 1200, n // 20 % 60, n * 3 % 60, n // 1200, n // 20 % 60,
                                                     n * 3 % 60 + 1 if n * 3 % 60 < 59 else 59))
                   for n in range(1, 2401))
    path = folder / "two-hours.srt"
    path.write_text(text)
    c0 = cpu()
    got = read_sidecar(path)
    print(f"\nsubtitles: {len(got.segments)} cues of a 2-hour SRT read in {cpu() - c0:.2f} CPU s")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="1 minute of video, size tiny only")
    ap.add_argument("--audio", type=Path, help="a folder holding the LibriVox clips (*.wav with *.txt)")
    ap.add_argument("--whisper", action="append", default=[], help="a real Whisper model to try (size or folder)")
    ap.add_argument("--sizes", help="random-weight Whisper sizes to time (default tiny,base,small; quick tiny)")
    args = ap.parse_args(argv)
    sizes = (args.sizes or ("tiny" if args.quick else "tiny,base,small")).split(",")
    minutes = 1 if args.quick else 5
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; {minutes} min of video")
    clips = librivox(args.audio)
    print(f"{len(clips)} LibriVox clips, {sum(duration(p) for p, _ in clips):.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        video = long_video(Path(tmp), clips, minutes)
        bench_engines(engines(args.whisper), clips, video, minutes * 60)
        if sizes != [""]:
            bench_sizes(sizes, Path(tmp), video, minutes * 60)
        bench_subtitles(Path(tmp))


if __name__ == "__main__":
    main()
