"""Model loading and encoding details."""
import numpy as np
import torch

from vidsearch.embed import Embedder, _normalise


def test_trimmed_text_encoding_equals_open_clips(tiny_model):
    e = Embedder(tiny_model)
    texts = ["a red circle", "something blue", "a green triangle on a white background", ""]
    tokens = e.tokenizer(texts)
    with torch.inference_mode():
        reference = _normalise(e.model.encode_text(tokens))
    assert np.allclose(e.encode_text(texts), reference, atol=1e-5)
    assert np.allclose(e.encode_text(["a red circle"])[0], reference[0], atol=1e-5)  # alone: a shorter cut
