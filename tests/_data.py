"""Test helper: small splits with a signal a CNN can learn, stored as preprocess stores images (a uint8
images.npy viewed lazily), for sweeps that need no DICOM."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medtune.data.datamodule import SplitArrays, TrainData
from medtune.data.store import write_images
from medtune.task import Task


def learnable_split(n: int, seed: int, folder: Path, size: int = 16) -> SplitArrays:
    """n noisy size x size images, alternating labels; class 1 has a bright 4x4 square somewhere."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 0.05, (n, 1, size, size)).astype(np.float32)
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, size - 4, 2)
        x[i, 0, r:r + 4, c:c + 4] += 0.5
    ids = [f"s{seed}-{i}" for i in range(n)]
    images = write_images(Path(folder) / f"images-{seed}-{n}-{size}.npy", np.clip(x, 0, 1))
    return SplitArrays(images, y.astype(np.int64), ids, ids)


def learnable_data(folder: Path, n_train: int, n_val: int, size: int = 16) -> TrainData:
    """Train (seed 0) and val (seed 1) splits of the binary square task."""
    return TrainData(learnable_split(n_train, 0, folder, size), learnable_split(n_val, 1, folder, size),
                     Task("binary", ("normal", "abnormal")))
