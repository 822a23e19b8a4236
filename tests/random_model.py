"""An open_clip architecture with random weights, written as a `local-dir:` folder: the compute and preprocessing
of the real model without its weights (which cannot be downloaded here). Used by tests/test_models.py and the
benchmarks."""
from __future__ import annotations

import json
import logging
from pathlib import Path


def random_model(folder: Path, name: str, pretrained: str, text: dict | None = None) -> tuple[dict, dict]:
    """open_clip's `name` with random weights and the preprocessing of its `pretrained` tag (input size, resize mode,
    interpolation, mean and std), in `folder`; `text` overrides the text tower's config (a small stand-in). Returns
    (model_cfg, preprocess_cfg) as written."""
    import open_clip
    from safetensors.torch import save_file

    cfg = open_clip.get_model_config(name)
    tag = open_clip.get_pretrained_cfg(name, pretrained)
    if tag.get("quick_gelu"):
        cfg["quick_gelu"] = True
    if text:
        cfg["text_cfg"].update(text)
        cfg["text_cfg"].pop("hf_tokenizer_name", None)
    pp = {"size": cfg["vision_cfg"]["image_size"],
          **{k: tag[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": cfg, "preprocess_cfg": pp}))
    logging.disable(logging.WARNING)  # "no weights in the folder": they are written next
    try:
        model = open_clip.create_model(f"local-dir:{folder}")
    finally:
        logging.disable(logging.NOTSET)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "open_clip_model.safetensors")
    return cfg, pp
