"""The image store: integer round trips, the all-or-nothing file, and the lazy row view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medtune.data.store import ImageArray, open_store, quantize, to_store


@pytest.mark.parametrize("bits, dtype, top", [(8, np.uint8, 255), (16, np.uint16, 65535)])
def test_to_store_rounds_and_clips(bits: int, dtype: type, top: int) -> None:
    image = np.array([-0.5, 0.0, 0.5, 1.0, 2.0], dtype=np.float32)
    stored = to_store(image, bits)
    assert stored.dtype == dtype and stored.tolist() == [0, 0, round(0.5 * top), top, top]
    assert np.abs(quantize(image, bits) - np.clip(image, 0, 1)).max() <= 0.5 / top + 1e-7


def test_open_store_appears_only_when_complete(tmp_path: Path) -> None:
    path = tmp_path / "images.npy"
    with open_store(path, (3, 1, 4, 4), 8) as images:
        images[:] = 7
        assert not path.exists()  # a reader before the end sees no images.npy at all
    assert np.load(path).dtype == np.uint8 and int(np.load(path).sum()) == 7 * 48
    with pytest.raises(RuntimeError), open_store(path, (3, 1, 4, 4), 8) as images:
        images[:] = 9
        raise RuntimeError("killed half-way")
    assert int(np.load(path).max()) == 7  # the old, complete file stands
    assert not list(tmp_path.glob("*.partial"))


def test_image_array_slices_are_normalised_floats(tmp_path: Path) -> None:
    np.save(tmp_path / "images.npy", np.arange(5, dtype=np.uint8).reshape(5, 1, 1, 1) * 50)
    view = ImageArray(tmp_path / "images.npy", np.array([4, 0, 2]))
    assert len(view) == 3 and view.shape == (3, 1, 1, 1) and view.scale == 255.0
    assert view[:].ravel().tolist() == pytest.approx([200 / 255, 0.0, 100 / 255])
    assert view[np.array([2])].ravel().tolist() == pytest.approx([100 / 255])
    assert view.raw(0).ravel().tolist() == [200] and np.asarray(view).dtype == np.float32
