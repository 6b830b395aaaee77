"""Fitting an image of any shape into the S x S square the networks take, without distorting it by default.

A 2000 x 2500 radiograph stretched to a square widens every rib and heart by 25%; `pad` keeps the
aspect ratio and letterboxes (black bars, what a reader sees around a film), `crop` fills the square
and cuts the long side's ends, `stretch` is the old behaviour for data that is square anyway.
"""

from __future__ import annotations

import cv2
import numpy as np

from medtune.choices import RESIZE_MODES


def _scaled(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """cv2 resize of (H, W): INTER_AREA when shrinking (no aliasing), INTER_LINEAR when enlarging."""
    shrinking = image.shape[0] > height or image.shape[1] > width
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def resize(image: np.ndarray, size: int, mode: str = "pad") -> np.ndarray:
    """(H, W) or (C, H, W) -> size x size by `mode` (pad | crop | stretch); the dtype is kept."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode {mode!r} is not one of {', '.join(RESIZE_MODES)}")
    if image.ndim == 3:
        return np.stack([resize(plane, size, mode) for plane in image])
    height, width = image.shape
    if mode == "stretch" or height == width:
        return _scaled(image, size, size)
    scale = size / (max(height, width) if mode == "pad" else min(height, width))
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    scaled = _scaled(image, new_h, new_w)
    if mode == "crop":
        top, left = (new_h - size) // 2, (new_w - size) // 2
        return scaled[top:top + size, left:left + size]
    out = np.zeros((size, size), dtype=scaled.dtype)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top:top + new_h, left:left + new_w] = scaled
    return out
