"""Train-time augmentation keeps the preprocess contract: (H, W) float32 in [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest

from medtune.data.transforms import train_transform


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).random((16, 16), dtype=np.float32)


def test_strength_zero_means_no_transform() -> None:
    assert train_transform(0.0) is None


@pytest.mark.parametrize("strength", [0.3, 1.0])
def test_dtype_shape_and_range_are_kept(image: np.ndarray, strength: float) -> None:
    transform = train_transform(strength, seed=1)
    assert transform is not None
    # extremes: a white image pushed brighter and a black one with noise must stay in [0, 1]
    for img in (image, np.ones_like(image), np.zeros_like(image)):
        for _ in range(50):
            out = transform(image=img)["image"]
            assert out.dtype == np.float32 and out.shape == img.shape
            assert out.min() >= 0.0 and out.max() <= 1.0


def test_full_strength_actually_changes_images(image: np.ndarray) -> None:
    transform = train_transform(1.0, seed=1)
    changed = sum(not np.array_equal(transform(image=image)["image"], image) for _ in range(20))
    assert changed >= 15


def test_same_seed_same_augmentations(image: np.ndarray) -> None:
    a, b, c = train_transform(0.8, seed=3), train_transform(0.8, seed=3), train_transform(0.8, seed=4)
    outs_a = [a(image=image)["image"] for _ in range(5)]
    outs_b = [b(image=image)["image"] for _ in range(5)]
    outs_c = [c(image=image)["image"] for _ in range(5)]
    assert all(np.array_equal(x, y) for x, y in zip(outs_a, outs_b))
    assert not all(np.array_equal(x, y) for x, y in zip(outs_a, outs_c))


def test_strength_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="strength"):
        train_transform(1.5)
