"""The image store: images.npy, (N, C, S, S) unsigned integers, read lazily as float batches.

Decoded images are windowed to [0, 1] and stored as uint8 (uint16 with `preprocess.bits: 16`): a
display window has 256 grey levels, so 8 bits lose nothing a reader sees while taking a quarter of
float32's space (100k images at 224 px: 5 GB, not 20). 16 bits are for wide windows over 12-bit data
(a percentile window on CT) where 8-bit steps would be coarse. Normalisation to float happens per batch,
on the training device. Every consumer reads rows through `ImageArray`, a memory-mapped view: trials on
one node share the file through the OS page cache and none holds a private copy of a split.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from medtune.errors import DataError
from medtune.jsonio import atomic_path

DTYPES = {8: np.uint8, 16: np.uint16}


def to_store(image: np.ndarray, bits: int) -> np.ndarray:
    """Float image in [0, 1] -> the store's integers (round to nearest)."""
    top = float(np.iinfo(DTYPES[bits]).max)
    return np.rint(np.clip(image, 0.0, 1.0) * top).astype(DTYPES[bits])


def scale_of(dtype: np.dtype) -> float:
    """What a stored value is divided by to give [0, 1] (1 for a legacy float store)."""
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else 1.0


def quantize(image: np.ndarray, bits: int) -> np.ndarray:
    """The float image a network sees after a round trip through the store: what predict feeds it."""
    return (to_store(image, bits) / scale_of(np.dtype(DTYPES[bits]))).astype(np.float32)


def open_images(images_path: Path, rows: np.ndarray) -> np.ndarray:
    """images.npy as a read-only memory map (no pixels read yet); DataError when it is missing or
    shorter than the largest of `rows`. Every reader of the store opens it here."""
    images_path = Path(images_path)
    if not images_path.is_file():
        raise DataError(f"{images_path}: not found; run the `preprocess` stage first")
    images = np.load(images_path, mmap_mode="r")
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and rows.max() >= len(images):
        raise DataError(f"{images_path}: has {len(images)} images but index.parquet points at row {rows.max()}")
    return images


@contextmanager
def open_store(path: Path, shape: tuple[int, ...], bits: int) -> Iterator[np.ndarray]:
    """A writable memory-mapped images.npy that appears at `path` only once the block completes.

    Rows are written through jsonio.atomic_path (a temp file, fsynced and renamed over `path`), so a
    killed preprocess never leaves an images.npy that a later stage would read as complete.
    """
    with atomic_path(path) as tmp:
        images = np.lib.format.open_memmap(tmp, mode="w+", dtype=DTYPES[bits], shape=shape)
        try:
            yield images
            images.flush()
        finally:
            del images  # closes this reference to the map before the rename


class ImageArray:
    """Rows of images.npy as a lazy, picklable view: `x[i:j]` / `x[idx]` give float32 in [0, 1].

    Only the path and the row numbers are pickled, so Ray ships it to trials without the pixels and each
    process maps the file itself. `raw(i)` gives the stored integers (augmentation works on uint8).
    """

    def __init__(self, path: Path, rows: np.ndarray) -> None:
        self.path, self.rows = Path(path).resolve(), np.asarray(rows, dtype=np.int64)
        self._map: np.ndarray | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "rows": self.rows}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path, self.rows, self._map = state["path"], state["rows"], None

    def open(self) -> np.ndarray:
        """The memory-mapped file, opened (and checked against the rows) on first use in this process."""
        if self._map is None:
            self._map = open_images(self.path, self.rows)
        return self._map

    @property
    def store(self) -> np.ndarray:
        return self.open()

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.rows), *self.store.shape[1:])

    @property
    def scale(self) -> float:
        return scale_of(self.store.dtype)

    def raw(self, index: Any) -> np.ndarray:
        """Stored values of the selected rows (an int gives one (C, S, S) image), copied out of the map."""
        return np.array(self.store[self.rows[index]])

    def __getitem__(self, index: Any) -> np.ndarray:
        return (self.raw(index) / self.scale).astype(np.float32)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """All rows as float32: for small splits and tests; loaders and predictors slice instead."""
        out = self[slice(None)]
        return out if dtype is None else out.astype(dtype)


def write_images(path: Path, images: np.ndarray, bits: int = 8) -> ImageArray:
    """Store float images in [0, 1] (N, C, S, S) as preprocess would, and view all of them (tests, benches)."""
    with open_store(path, images.shape, bits) as store:
        store[:] = to_store(images, bits)
    return ImageArray(path, np.arange(len(images)))
