"""Speech heard in a video: pocketsphinx on a spoken phrase (espeak-ng's voice), Whisper's adapter and its errors."""
import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
from media import FFMPEG

from vidsearch.errors import ModelLoadError
from vidsearch.speech import MAX_SEGMENT, SAID, Word, engine, lines, transcribe_video

ESPEAK = shutil.which("espeak-ng")
NO_ESPEAK = "espeak-ng is not installed (apt-get install espeak-ng): there is no speech to hear"
needs_espeak = pytest.mark.skipif(ESPEAK is None, reason=NO_ESPEAK)
pytest.importorskip("pocketsphinx", reason="pocketsphinx comes with the speech extra: pip install '.[speech]'")

# Phrases pocketsphinx hears right in espeak-ng's en-us voice at 120 words a minute (tried by hand: most phrases
# come out as other words), each said after some silence: (seconds of silence before, phrase, words asserted).
SPOKEN = [(2.0, "please call me tomorrow morning", "tomorrow morning"),
          (3.0, "one two three four five", "three four five")]


def say(text: str) -> tuple[np.ndarray, int]:
    out = subprocess.run([ESPEAK, "-v", "en-us", "-s", "120", "--stdout", text], capture_output=True, check=True)
    with wave.open(io.BytesIO(out.stdout)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), np.int16), w.getframerate()


def write_wav(path: Path, samples: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples.astype(np.int16).tobytes())
    return path


def with_video(path: Path, audio: list[str]) -> Path:
    """An H.264 video (a blue picture) with the given audio input (a WAV file or a lavfi source), AAC-encoded."""
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=blue:s=160x120:r=10", *audio,
                    "-shortest", "-c:v", "libx264", "-c:a", "aac", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def spoken_video(tmp_path_factory) -> tuple[Path, list[tuple[float, float, str]]]:
    """A video whose sound says SPOKEN's phrases; returns (path, [(from, to, words)]) of when each was said."""
    if ESPEAK is None:
        pytest.skip(NO_ESPEAK)
    parts, said, rate, t = [], [], 22050, 0.0
    for silence, phrase, words in SPOKEN:
        samples, rate = say(phrase)
        parts += [np.zeros(int(silence * rate), np.int16), samples]
        said.append((t + silence, t + silence + len(samples) / rate, words))
        t += silence + len(samples) / rate
    parts.append(np.zeros(2 * rate, np.int16))
    folder = tmp_path_factory.mktemp("speech")
    wav = write_wav(folder / "said.wav", np.concatenate(parts), rate)
    return with_video(folder / "said.mp4", ["-i", str(wav)]), said


@needs_espeak
def test_pocketsphinx_hears_each_phrase_when_it_was_said(spoken_video):
    path, said = spoken_video
    out = transcribe_video(path, engine("pocketsphinx"))
    assert out.problems == []
    for start, end, words in said:
        hits = [s for s in out.segments if words in s.text]
        assert len(hits) == 1, (words, out.segments)
        seg = hits[0]
        assert start - 0.5 <= seg.start and seg.end <= end + 0.5
        assert seg.layer == SAID and seg.source == "pocketsphinx"
        heard = [w for w in seg.words if w.text in words.split()]
        assert [w.text for w in heard] == words.split()
        assert all(start - 0.5 <= w.start < w.end <= end + 0.5 for w in heard)
    assert out.segments == sorted(out.segments, key=lambda s: s.start)


@needs_espeak
def test_samples_in_memory_are_heard_like_the_file(spoken_video, tmp_path):
    path, said = spoken_video
    pcm = subprocess.run([FFMPEG, "-loglevel", "error", "-i", str(path), "-ac", "1", "-ar", "16000", "-f", "s16le",
                          "-"], capture_output=True, check=True).stdout
    samples = np.frombuffer(pcm, np.int16)
    eng = engine("pocketsphinx")
    from_file = [s.text for s in eng.transcribe(path)]
    assert [s.text for s in eng.transcribe(samples)] == from_file
    assert [s.text for s in eng.transcribe(samples.astype(np.float32) / 32768)] == from_file
    # Sound that stops in the middle of a phrase, on the edge of the endpointer's 30 ms frame: the phrase heard so
    # far ends there.
    cut = int((said[0][0] + 1.0) * 16000) // 480 * 480
    heard = eng.transcribe(samples[:cut])
    assert heard and heard[-1].end <= cut / 16000 + 0.01 and heard[-1].start >= said[0][0] - 0.5


def test_silence_and_a_video_without_sound_give_no_segments(tmp_path):
    silent = with_video(tmp_path / "silent.mp4", ["-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "5"])
    out = transcribe_video(silent, engine("pocketsphinx"))
    assert out.segments == [] and out.problems == []
    mute = tmp_path / "mute.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=red:s=160x120:r=10:d=2",
                    "-c:v", "libx264", str(mute)], check=True)
    assert transcribe_video(mute, engine("pocketsphinx")).segments == []


def test_a_long_stretch_of_speech_is_cut_into_lines_between_words():
    words = [Word(f"w{i}", i * 1.0, i * 1.0 + 0.8) for i in range(40)]
    got = lines(words, "x")
    assert len(got) == 3 and all(s.end - s.start <= MAX_SEGMENT for s in got)
    assert " ".join(s.text for s in got) == " ".join(w.text for w in words)
    assert [w for s in got for w in s.words] == words


def test_whisper_without_its_model_offline_is_one_clear_sentence(monkeypatch, tmp_path):
    pytest.importorskip("faster_whisper", reason="faster-whisper comes with the speech extra")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache: no model downloaded before
    with pytest.raises(ModelLoadError) as e:
        engine("whisper:tiny")
    text = str(e.value)
    assert "'tiny'" in text and "folder" in text and "whisper:/" in text and text.count(". ") == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelLoadError, match=str(empty)):
        engine(f"whisper:{empty}")


def test_an_unknown_engine_is_one_sentence():
    with pytest.raises(ModelLoadError, match="Unknown speech engine 'sphinx'"):
        engine("sphinx")


@pytest.fixture(scope="module")
def random_whisper(tmp_path_factory) -> Path:
    pytest.importorskip("faster_whisper", reason="faster-whisper comes with the speech extra")
    pytest.importorskip("transformers", reason="transformers builds the random-weight Whisper model")
    from benchmarks.common import random_whisper

    return random_whisper(tmp_path_factory.mktemp("whisper"))


@needs_espeak
def test_whisper_from_a_folder_gives_said_segments_inside_the_audio(random_whisper, spoken_video):
    """A random-weight model hears nothing true: what is checked is the adapter (times, layer, source, words)."""
    path, said = spoken_video
    eng = engine(f"whisper:{random_whisper}")
    out = transcribe_video(path, eng)
    length = said[-1][1] + 2
    assert out.problems == [] and out.segments
    assert out.segments == sorted(out.segments, key=lambda s: s.start)
    for seg in out.segments:
        assert 0 <= seg.start < seg.end <= length + 0.05 and seg.text
        assert seg.layer == SAID and seg.source == f"whisper:{random_whisper}"
        assert all(seg.start <= w.start <= w.end <= seg.end for w in seg.words)
    assert any(seg.words for seg in out.segments)
