"""Test helper: small in-memory splits with a signal a CNN can learn, for sweeps that need no DICOM."""

from __future__ import annotations

import numpy as np

from medtune.data.datamodule import SplitArrays


def learnable_split(n: int, seed: int, size: int = 16) -> SplitArrays:
    """n noisy size x size images, alternating labels; class 1 has a bright 4x4 square somewhere."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 0.05, (n, 1, size, size)).astype(np.float32)
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        r, c = rng.integers(0, size - 4, 2)
        x[i, 0, r:r + 4, c:c + 4] += 0.5
    ids = [f"s{seed}-{i}" for i in range(n)]
    return SplitArrays(np.clip(x, 0, 1), y.astype(np.int64), ids, ids)
