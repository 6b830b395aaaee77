"""Fitting images into the square: pad keeps the aspect ratio, crop fills, stretch distorts."""

from __future__ import annotations

import numpy as np
import pytest

from medtune.data.geometry import resize


def _portrait() -> np.ndarray:
    """200 x 100 white image with a black border column at the left: shape and edges are checkable."""
    image = np.ones((200, 100), dtype=np.float32)
    image[:, :10] = 0.0
    return image


def test_pad_keeps_the_aspect_ratio_and_letterboxes() -> None:
    out = resize(_portrait(), 20, "pad")
    assert out.shape == (20, 20)
    assert np.all(out[:, :5] == 0) and np.all(out[:, 15:] == 0)  # black bars left and right
    assert out[:, 6:15].mean() == pytest.approx(1.0)  # the picture, 10 px wide, undistorted


def test_crop_fills_the_square_and_cuts_the_long_side() -> None:
    out = resize(_portrait(), 20, "crop")
    assert out.shape == (20, 20) and out[:, 0].max() < 0.1 and out[:, 5:].min() == pytest.approx(1.0)


def test_stretch_and_channels() -> None:
    assert resize(_portrait(), 20, "stretch").shape == (20, 20)
    assert resize(np.stack([_portrait()] * 3), 16, "pad").shape == (3, 16, 16)
    with pytest.raises(ValueError, match="resize mode"):
        resize(_portrait(), 16, "squash")
