"""What is said in a video, heard by a speech engine: opt-in, with `pip install 'vidsearch[speech]'`.

An engine turns audio (a media file, or 16 kHz mono samples) into "said" segments (vidsearch.transcript) with word
times, skipping silence. Two engines, named the way a user names them (`engine("whisper:small")`):

- `whisper[:MODEL]`: faster-whisper (Whisper on CTranslate2, int8 on the CPU), the engine for users: MODEL is a
  Whisper size (`tiny`, `base`, `small`, `medium`, `large-v3`, `.en` variants...), downloaded once on first use
  into the Hugging Face cache, or a folder holding a CTranslate2 conversion, for use offline. Default DEFAULT_WHISPER
  (docs/speech.md says why). Silero VAD (inside faster-whisper's wheel) skips silence.
- `pocketsphinx`: CMU PocketSphinx with the US-English model inside its wheel: offline, small and fast, but it
  hears far less than Whisper; its voice-activity endpointer skips silence.

Audio is decoded by ffmpeg (imageio-ffmpeg's binary) to 16 kHz mono and streamed, CHUNK_SECONDS at a time, so an
hour of audio never sits in memory whole.
"""
from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import imageio_ffmpeg
import numpy as np

from .errors import ModelLoadError
from .transcript import SAID, Segment, Transcript, Word, repair

SAMPLE_RATE = 16000
CHUNK_SECONDS = 600  # audio handed to Whisper at a time; a word cut by a chunk's edge may be misheard
DEFAULT_WHISPER = "base"
MISSING = "Transcribing speech needs the speech extra: pip install 'vidsearch[speech]'."
MAX_SEGMENT = 15.0  # seconds: a long stretch of speech heard without a pause is cut at a word into lines this long


class Engine(Protocol):
    name: str

    def transcribe(self, audio: Path | np.ndarray) -> list[Segment]:
        """Said segments of a media file or of 16 kHz mono samples (int16 or float in -1..1), sorted."""


def engine(spec: str, threads: int = 0) -> Engine:
    """The engine a user named: `pocketsphinx`, `whisper` or `whisper:MODEL` (a size or a local folder).
    Raises ModelLoadError (one sentence) when the extra is not installed or the model cannot be had."""
    name, _, model = spec.partition(":")
    if name == "pocketsphinx" and not model:
        return Pocketsphinx()
    if name == "whisper":
        return Whisper(model or DEFAULT_WHISPER, threads=threads)
    raise ModelLoadError(f"Unknown speech engine '{spec}': use pocketsphinx, whisper or whisper:MODEL "
                         f"(a Whisper size such as {DEFAULT_WHISPER}, or a folder holding one).")


def transcribe_video(video: Path, eng: Engine) -> Transcript:
    """What `eng` hears in the video's first audio track; a video without audio has no segments, and one whose
    audio cannot be decoded gets a problem naming it, not an exception."""
    if not has_audio(video):
        return Transcript()
    try:
        return Transcript(eng.transcribe(video))
    except (OSError, RuntimeError, ValueError) as e:
        return Transcript(problems=[f"The speech in {video.name} could not be heard ({_reason(e)})."])


def has_audio(path: Path) -> bool:
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except Exception:  # not a media file PyAV can open: nothing to hear
        return False


def pcm(audio: Path | np.ndarray, seconds: float) -> Iterator[tuple[float, np.ndarray]]:
    """(start seconds, int16 samples) chunks of at most `seconds` of 16 kHz mono audio."""
    size = int(seconds * SAMPLE_RATE)
    if isinstance(audio, np.ndarray):
        samples = audio if audio.dtype == np.int16 else (np.clip(audio, -1, 1) * 32767).astype(np.int16)
        for i in range(0, len(samples), size):
            yield i / SAMPLE_RATE, samples[i:i + size]
        return
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-i", str(audio), "-map", "0:a:0",
           "-vn", "-ac", "1", "-ar", str(SAMPLE_RATE), "-f", "s16le", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        start = 0
        while block := proc.stdout.read(size * 2):
            chunk = np.frombuffer(block[:len(block) // 2 * 2], np.int16)
            yield start / SAMPLE_RATE, chunk
            start += len(chunk)
        err = proc.stderr.read().decode(errors="replace").strip()
        if proc.wait() != 0:
            raise RuntimeError((err.splitlines() or ["ffmpeg failed"])[-1])
    finally:
        proc.kill()
        proc.wait()


def lines(words: list[Word], source: str) -> list[Segment]:
    """Words heard in one stretch of speech as segments no longer than MAX_SEGMENT, cut between words."""
    out: list[list[Word]] = []
    for w in words:
        if not out or w.end - out[-1][0].start > MAX_SEGMENT:
            out.append([])
        out[-1].append(w)
    return [Segment(ws[0].start, ws[-1].end, " ".join(w.text for w in ws), SAID, source, tuple(ws)) for ws in out]


class Pocketsphinx:
    """PocketSphinx's US-English model (inside its wheel), one stretch of speech at a time as its endpointer
    finds them; filler entries (<s>, <sil>, [NOISE]) are left out and alternative spellings (`the(2)`) named by
    their word."""

    name = "pocketsphinx"
    FRAME_RATE = 100  # the decoder's frames per second

    def __init__(self):
        try:
            from pocketsphinx import Decoder, Endpointer
        except ImportError:
            raise ModelLoadError(MISSING) from None
        self._endpointer = Endpointer
        self._decoder = Decoder(samprate=SAMPLE_RATE, loglevel="FATAL")
        self._speech, self._start = [], 0.0  # the stretch of speech being heard, and since when (seconds)

    def transcribe(self, audio: Path | np.ndarray) -> list[Segment]:
        ep = self._endpointer(sample_rate=SAMPLE_RATE)
        self._speech = []
        step = ep.frame_bytes // 2
        out, tail = [], np.zeros(0, np.int16)
        for _, chunk in pcm(audio, 30):
            samples = np.concatenate([tail, chunk])
            whole = len(samples) // step * step
            for i in range(0, whole, step):
                out += self._feed(ep, ep.process(samples[i:i + step].tobytes()))
            tail = samples[whole:]
        if ep.in_speech:
            final = np.zeros(step, np.int16)  # end_stream takes a frame or less, but not nothing: silence after
            final[:len(tail)] = tail
            out += self._feed(ep, ep.end_stream(final.tobytes()), last=True)
        return repair(out)

    def _feed(self, ep, speech: bytes | None, last: bool = False) -> list[Segment]:
        if speech is None:
            return []
        if not self._speech:
            self._start = ep.speech_start
        self._speech.append(speech)
        if ep.in_speech and not last:
            return []
        # One stretch decoded whole (full_utt): its own cepstral mean, so what is heard does not depend on what
        # was heard before.
        self._decoder.start_utt()
        self._decoder.process_raw(b"".join(self._speech), full_utt=True)
        self._decoder.end_utt()
        self._speech = []
        words = [Word(re.sub(r"\(\d+\)$", "", s.word), self._start + s.start_frame / self.FRAME_RATE,
                      self._start + (s.end_frame + 1) / self.FRAME_RATE)
                 for s in self._decoder.seg() if not (s.word.startswith(("<", "[")))]
        return lines(words, self.name)


class Whisper:
    """A Whisper model on CTranslate2 (faster-whisper), int8 on the CPU, with Silero VAD skipping silence and word
    times on; `options` are more keywords for faster-whisper's transcribe (language="en", beam_size=1...)."""

    def __init__(self, model: str = DEFAULT_WHISPER, device: str = "cpu", compute_type: str = "int8",
                 threads: int = 0, options: dict | None = None):
        self.options = {"vad_filter": True, "word_timestamps": True, "condition_on_previous_text": False,
                        **(options or {})}
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise ModelLoadError(MISSING) from None
        self.name = f"whisper:{model}"
        try:
            self._model = WhisperModel(model, device=device, compute_type=compute_type, cpu_threads=threads)
        except Exception as e:  # hub errors, a folder that holds no model, CTranslate2's own errors
            raise ModelLoadError(
                f"The Whisper model '{model}' could not be loaded ({_reason(e)}): it is downloaded on first use, "
                "so offline name instead a folder holding a CTranslate2 conversion of it (model.bin, config.json, "
                "tokenizer.json, as in Systran/faster-whisper-base), such as whisper:/models/faster-whisper-base."
            ) from None

    def transcribe(self, audio: Path | np.ndarray) -> list[Segment]:
        out = []
        for start, chunk in pcm(audio, CHUNK_SECONDS):
            segments, _ = self._model.transcribe(chunk.astype(np.float32) / 32768, **self.options)
            end = start + len(chunk) / SAMPLE_RATE
            for s in segments:
                if start + s.start >= end:  # a time past the audio's end: a model's guess, not something heard
                    continue
                words = tuple(Word(w.word.strip(), start + float(w.start), start + float(w.end)) for w in s.words or ())
                out.append(Segment(start + float(s.start), min(start + float(s.end), end), s.text.strip(), SAID,
                                   self.name, words))  # repair keeps the words inside
        return repair(out)


def _reason(e: BaseException) -> str:
    """The first sentence of an error, to quote inside one of ours."""
    return (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0].rstrip(".")[:200]
