"""Model loading and encoding details."""
import numpy as np
import torch

from vidsearch.embed import Embedder, _normalise, onnx_cache_dir


def test_trimmed_text_encoding_equals_open_clips(tiny_model):
    e = Embedder(tiny_model)
    texts = ["a red circle", "something blue", "a green triangle on a white background", ""]
    tokens = e.tokenizer(texts)
    with torch.inference_mode():
        reference = _normalise(e.model.encode_text(tokens))
    assert np.allclose(e.encode_text(texts), reference, atol=1e-5)
    assert np.allclose(e.encode_text(["a red circle"])[0], reference[0], atol=1e-5)  # alone: a shorter cut


def test_both_towers_run_on_onnx_runtime_with_the_same_vectors(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fast, slow = Embedder(tiny_model), Embedder(tiny_model, backend="torch")
    squares = [fast.prepare(np.random.default_rng(i).integers(0, 255, (64, 96, 3), dtype=np.uint8)) for i in range(5)]
    texts = ["a red circle", "something blue on a white background", ""]
    assert np.abs(fast.encode_prepared(squares) - slow.encode_prepared(squares)).max() < 1e-4
    for n in (1, 3):  # one text, and several of different lengths
        assert np.abs(fast.encode_text(texts[:n]) - slow.encode_text(texts[:n])).max() < 1e-4
    assert fast._sessions["image"] is not None and fast._sessions["text"] is not None and not slow._sessions
    cached = sorted(onnx_cache_dir().glob("*.onnx"))
    assert [p.name.split("-")[0] for p in cached] == ["image", "text"]
    stamps = [p.stat().st_mtime_ns for p in cached]
    again = Embedder(tiny_model)
    again.encode_prepared(squares[:1])
    again.encode_text(["a green triangle"])
    assert [p.stat().st_mtime_ns for p in cached] == stamps  # the exports are reused, not redone

    cached[0].write_bytes(b"not an onnx file")  # a damaged cache is exported again, not trusted and not fatal
    healed = Embedder(tiny_model)
    assert np.abs(healed.encode_prepared(squares) - slow.encode_prepared(squares)).max() < 1e-4
    assert healed._sessions["image"] is not None and cached[0].stat().st_size > 1000
