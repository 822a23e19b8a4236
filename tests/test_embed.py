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


def test_image_tower_runs_on_onnx_runtime_with_the_same_vectors(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    squares = [np.random.default_rng(i).integers(0, 255, (64, 64, 3), dtype=np.uint8) for i in range(5)]
    fast, slow = Embedder(tiny_model), Embedder(tiny_model, backend="torch")
    squares = [fast.prepare(s) for s in squares]
    assert np.abs(fast.encode_prepared(squares) - slow.encode_prepared(squares)).max() < 1e-4
    assert fast._onnx and slow._onnx is False
    [cached] = onnx_cache_dir().glob("*.onnx")
    stamp = cached.stat().st_mtime_ns
    again = Embedder(tiny_model)
    again.encode_prepared(squares[:1])
    assert again._onnx and cached.stat().st_mtime_ns == stamp  # the export is reused, not redone

    cached.write_bytes(b"not an onnx file")  # a damaged cache is exported again, not trusted and not fatal
    healed = Embedder(tiny_model)
    assert np.abs(healed.encode_prepared(squares) - slow.encode_prepared(squares)).max() < 1e-4
    assert healed._onnx and cached.stat().st_size > 1000
