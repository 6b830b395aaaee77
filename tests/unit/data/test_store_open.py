"""images.npy is opened in one place: memory-mapped, and refused in one line when missing or too short."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medtune.data.store import open_images
from medtune.errors import DataError


def test_opens_memory_mapped_and_checks_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "images.npy"
    np.save(path, np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 1, 2, 2))
    images = open_images(path, np.array([0, 3]))
    assert isinstance(images, np.memmap) and images.shape == (4, 1, 2, 2) and images[3, 0, 1, 1] == 15
    with pytest.raises(DataError, match=r"images.npy: has 4 images but index.parquet points at row 4$"):
        open_images(path, np.array([1, 4]))
    with pytest.raises(DataError, match=r"nope.npy: not found; run the `preprocess` stage first"):
        open_images(tmp_path / "nope.npy", np.array([0]))
