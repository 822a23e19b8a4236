"""The models the guide covers (benchmarks.common.GUIDE_MODELS, which docs/models.md must match, section by section)
run through vidsearch: each one's image tower, with random weights, takes a frame through Embedder.encode_images
exactly as the model's own open_clip preprocessing (input size, resize mode, interpolation, mean and std of its
pretrained tag) would feed it.

To stay cheap and offline, the text tower of each test model is a stand-in (one narrow layer, open_clip's CLIP
tokenizer): SigLIP2's Gemma tokenizer comes from the Hugging Face hub and needs `transformers`, neither of which is
here, and the text tower is not what differs between these models' image paths. The three largest models are left
to `python -m benchmarks.bench models`, which runs every model whole, text tower included.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from benchmarks.common import GUIDE_MODELS as MODELS
from benchmarks.common import random_model

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "models.md"
LEFT_TO_BENCH = {
    "ViT-B-16-SigLIP2": "same code and preprocessing as ViT-B-32-SigLIP2-256 (timm SigLIP ViT, squash, bicubic) at "
                        "patch 16 and 224 px; left to bench.py models to keep this file under 40 s",
    "PE-Core-B-16": "same code and preprocessing as PE-Core-T-16-384 (timm PE ViT, squash, bilinear) at base width "
                    "and 224 px; left to bench.py models to keep this file under 40 s",
    "ViT-L-14": "the CLIP ViT of ViT-B-32 at large size: 1.2 GB of image weights to write and load; left to bench.py "
                "models",
}


def frame() -> np.ndarray:
    """A 16:9 picture whose left and right edges differ from its centre, so that cropping, squashing and
    letterboxing give the model different inputs."""
    rng = np.random.default_rng(7)
    img = np.empty((360, 640, 3), np.uint8)
    img[:] = (40, 90, 200)
    img[:, :140] = (230, 40, 40)
    img[:, -140:] = (30, 200, 60)
    img[100:260, 220:420] = rng.integers(0, 255, (160, 200, 3), dtype=np.uint8)
    return img


def open_clip_input(pp: dict, rgb: np.ndarray, resize_mode: str):
    """What open_clip's own eval preprocessing for these settings (with `resize_mode`) makes of `rgb`."""
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from PIL import Image

    transform = image_transform_v2(PreprocessCfg(**{**pp, "resize_mode": resize_mode}), is_train=False)
    return transform(Image.fromarray(rgb))[None]


def test_the_guide_has_a_section_per_model_in_order():
    names = [name for name, _ in MODELS]
    assert names[0] == "ViT-B-32" and len(names) == len(set(names)) >= 5 and set(LEFT_TO_BENCH) <= set(names)
    sections = re.findall(r"^### (\S+) · (\S+)", GUIDE.read_text(encoding="utf-8"), flags=re.M)
    assert sections == MODELS, "docs/models.md's model sections and benchmarks.common.GUIDE_MODELS differ"


def test_the_default_model_is_the_guides_first():
    from vidsearch.embed import DEFAULT_MODEL, DEFAULT_PRETRAINED

    assert MODELS[0] == (DEFAULT_MODEL, DEFAULT_PRETRAINED)


@pytest.mark.parametrize(("name", "pretrained"), MODELS, ids=[m[0] for m in MODELS])
def test_image_path(tmp_path, name, pretrained):
    if name in LEFT_TO_BENCH:
        pytest.skip(LEFT_TO_BENCH[name])
    import open_clip

    from vidsearch.embed import Embedder

    # A small text tower with open_clip's CLIP tokenizer: SigLIP2's own needs a download (see above).
    cfg, pp = random_model(tmp_path / "model", name, pretrained,
                           text={"layers": 1, "width": 64, "heads": 1, "vocab_size": 49408})
    e = Embedder(f"local-dir:{tmp_path / 'model'}", backend="torch")
    assert e.dim == cfg["embed_dim"]

    # The loaded model carries the tag's preprocessing, not open_clip's defaults.
    got_cfg = open_clip.get_model_preprocess_cfg(e.model)
    size = pp["size"]
    assert tuple(got_cfg["size"]) == (size, size)
    for key in ("resize_mode", "interpolation"):
        assert got_cfg[key] == pp[key], key
    assert tuple(got_cfg["mean"]) == tuple(pp["mean"]) and tuple(got_cfg["std"]) == tuple(pp["std"])

    fed = []  # what the image tower receives
    e.model.visual.register_forward_pre_hook(lambda module, args: fed.append(args[0].clone()))
    rgb = frame()
    vec = e.encode_images([rgb])
    assert vec.shape == (1, cfg["embed_dim"]) and vec.dtype == np.float32
    assert np.all(np.isfinite(vec)) and abs(float(np.linalg.norm(vec)) - 1) < 1e-4

    # The tower is fed what open_clip's own preprocessing for this tag would feed it ...
    assert len(fed) == 1 and tuple(fed[0].shape) == (1, 3, size, size)
    assert (fed[0] - open_clip_input(pp, rgb, pp["resize_mode"])).abs().max() < 1e-5
    # ... which is not what another resize mode gives (the test frame tells them apart).
    other = "shortest" if pp["resize_mode"] == "squash" else "squash"
    assert (fed[0] - open_clip_input(pp, rgb, other)).abs().max() > 0.1
