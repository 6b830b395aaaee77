"""Training-time augmentation: one albumentations pipeline whose strength is a single searchable knob.

Validation and test images are never augmented (identity), so every selection metric is computed on
the images as preprocessed. Images are (H, W[, C]) uint8 as the store holds them (OpenCV's fast path),
or float32 in [0, 1] for a 16-bit store.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import albumentations as A


def _clip_unit(image: np.ndarray, **_: object) -> np.ndarray:
    """Keep a float image's [0, 1] contract after brightness/contrast and noise (uint8 saturates by itself)."""
    if image.dtype == np.uint8:
        return image
    return np.clip(image, 0.0, 1.0).astype(np.float32, copy=False)


def train_transform(strength: float, seed: int | None = None) -> A.Compose | None:
    """Augmentation whose probabilities and magnitudes scale linearly with `strength` in [0, 1].

    None at strength 0, so the loader skips the per-sample call entirely. `seed` makes the stream of
    augmentations reproducible (albumentations ignores the global numpy/torch seeds).
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"augment strength must be in [0, 1], got {strength}")
    if strength == 0:
        return None
    # Imported here: only a training process augments, and the stages that merely load a split (promote,
    # test) would pay ~0.5 s for it.
    import albumentations as A

    s = float(strength)
    holes = max(1, round(3 * s))
    return A.Compose(
        [
            # Mirroring swaps heart side; acceptable for presence-of-finding labels, the common case.
            A.HorizontalFlip(p=0.5 * s),
            # Positioning varies a few degrees and a few percent between acquisitions.
            A.Affine(
                rotate=(-15 * s, 15 * s),
                scale=(1 - 0.1 * s, 1 + 0.1 * s),
                translate_percent=(-0.06 * s, 0.06 * s),
                border_mode=0,
                fill=0,
                p=0.7 * s,
            ),
            # Exposure and window differences between scanners.
            A.RandomBrightnessContrast(brightness_limit=0.2 * s, contrast_limit=0.2 * s, p=0.5 * s),
            # std is a fraction of the dtype's full range (255 for uint8, 1 for float).
            A.GaussNoise(std_range=(0.01 * s, 0.05 * s), p=0.3 * s),
            # Occlusion forces the net to use more than one region.
            A.CoarseDropout(
                num_holes_range=(1, holes),
                hole_height_range=(0.05, 0.05 + 0.15 * s),
                hole_width_range=(0.05, 0.05 + 0.15 * s),
                fill=0,
                p=0.3 * s,
            ),
            A.Lambda(image=_clip_unit, p=1.0),
        ],
        seed=seed,
    )
