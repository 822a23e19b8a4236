"""Turn decoded RGB frames into model input.

Frames are letterboxed (whole frame kept, padded to a square with the model's mean colour) rather than
centre-cropped: CLIP's default crop drops the left and right edges of a 16:9 frame, and what a user searches
for is often there.
"""
from __future__ import annotations

import cv2
import numpy as np


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


def to_tensor_batch(squares: list[np.ndarray], mean, std):
    """Stack size×size RGB uint8 images into a normalised float32 NCHW tensor."""
    import torch

    batch = torch.from_numpy(np.stack(squares)).permute(0, 3, 1, 2).float().div_(255)
    m = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
    return (batch - m) / s
