"""The preprocessed image array on disk: opened memory-mapped, checked against the rows asked for.

Every reader of data/processed/images.npy (training and scoring loaders, the split's leakage hashes)
opens it here, so a missing file or an index that points past its end fails the same way, in one line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtune.errors import DataError


def open_images(images_path: Path, rows: np.ndarray) -> np.ndarray:
    """images.npy as a read-only memory map (no pixels read yet); DataError when it is missing or
    shorter than the largest of `rows`."""
    images_path = Path(images_path)
    if not images_path.is_file():
        raise DataError(f"{images_path}: not found; run the `preprocess` stage first")
    images = np.load(images_path, mmap_mode="r")
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) and rows.max() >= len(images):
        raise DataError(f"{images_path}: has {len(images)} images but index.parquet points at row {rows.max()}")
    return images
