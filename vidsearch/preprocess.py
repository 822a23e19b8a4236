"""Turn decoded RGB pictures into model input.

By default a picture reaches the model exactly as open_clip's own `preprocess` for that model would feed it (its
resize mode: shortest side and centre crop for CLIP, squash for SigLIP, longest side and pad for others; its
interpolation; its mean and std): a model's published quality holds only for input prepared the way it was
trained and evaluated. "letterbox" is a choice made when an index is created: the whole frame shrunk into the
model's square and padded with the model's mean colour, so that what is at the left and right edges of a 16:9
shot is seen too, at the cost of a shape the model was not trained on.
"""
from __future__ import annotations

import cv2
import numpy as np

MODEL = "model"
LETTERBOX = "letterbox"
MODES = (MODEL, LETTERBOX)
# Indexes made before the mode was recorded were letterboxed.
LEGACY = LETTERBOX
# A picture is decoded with at least this many times the model's input side on its shortest side (or its full
# size, if smaller), so the model's own resize does the last step and nothing is ever upscaled on the way.
# Decoding at the input side itself (factor 1) put some vectors of noisy 4000x3000 photos below the fidelity
# bound with a random-weight ViT-B-32; 2 kept every test picture at cosine >= 0.999 (tests/test_fidelity.py).
DECODE_FACTOR = 2


class Preprocessor:
    """One model's picture → input step, split in two: `square` (geometry, uint8, cheap enough for the decode
    threads) and `batch` (to a normalised float tensor, once per batch)."""

    def __init__(self, transform, cfg: dict, mode: str = MODEL):
        if mode not in MODES:
            raise ValueError(f"Unknown preprocessing {mode!r}; one of {', '.join(MODES)}.")
        size = cfg["size"]
        self.size = (size, size) if isinstance(size, int) else tuple(size)  # (height, width)
        self.mean, self.std = tuple(cfg["mean"]), tuple(cfg["std"])
        self.mode = mode
        steps = list(transform.transforms)
        cut = next(i for i, s in enumerate(steps) if type(s).__name__.endswith("ToTensor"))
        tail = steps[cut + 1:]
        # What follows the geometry must be exactly what `batch` does, or the vectors would silently differ.
        if len(tail) != 1 or list(tail[0].mean) != list(self.mean) or list(tail[0].std) != list(self.std):
            raise ValueError(f"Unexpected open_clip preprocessing: {transform}")
        self._geometry = steps[:cut]

    @property
    def decode_side(self) -> int:
        """The shortest side a decoded picture keeps (when it has that many pixels)."""
        return DECODE_FACTOR * max(self.size)

    def square(self, rgb: np.ndarray) -> np.ndarray:
        """An RGB uint8 HxWx3 picture → the model's input picture, still uint8."""
        if self.mode == LETTERBOX:
            return fit_square(rgb, self.size[0], self.mean)
        from PIL import Image

        im = Image.fromarray(rgb)
        for step in self._geometry:
            im = step(im)
        return np.asarray(im, dtype=np.uint8)

    def batch(self, squares: list[np.ndarray], device: str = "cpu"):
        return to_tensor_batch(squares, self.mean, self.std, device)


def fit_square(rgb: np.ndarray, size: int, mean: tuple[float, float, float]) -> np.ndarray:
    """Resize an RGB uint8 HxWx3 image so its long side is `size`, centred on a size×size canvas of `mean`."""
    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(rgb, (nw, nh), interpolation=interp)
    canvas = np.empty((size, size, 3), dtype=np.uint8)
    canvas[:] = np.round(np.asarray(mean) * 255).astype(np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top:top + nh, left:left + nw] = resized
    return canvas


def to_tensor_batch(squares: list[np.ndarray], mean, std, device: str = "cpu"):
    """Stack RGB uint8 input pictures into a normalised float32 NCHW tensor (what ToTensor and Normalize give) on
    `device`. The pictures travel as uint8 and are converted there: on a GPU, converting a batch on the CPU and
    copying 4x the bytes held the image tower to a fraction of its speed."""
    import torch

    batch = torch.from_numpy(np.stack(squares)).to(device).permute(0, 3, 1, 2).float().div_(255)
    m = torch.tensor(mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
    return (batch - m) / s


def reduce_to(rgb: np.ndarray, side: int) -> np.ndarray:
    """Shrink an RGB array (area average) so its shortest side is `side`; never enlarge it."""
    h, w = rgb.shape[:2]
    scale = side / min(h, w)
    if scale >= 1:
        return rgb
    return cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
