"""Patient-level bootstrap CIs for any metrics: resample patients, not images, since a patient's images
are correlated and an image-level bootstrap would give falsely narrow intervals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def flat_numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """Every float of a metrics dict, nested dicts one level down as `outer.inner` (ints, lists left out)."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, float):
            out[key] = value
        elif isinstance(value, dict):
            out |= {f"{key}.{k}": v for k, v in value.items() if isinstance(v, float)}
    return out


def patient_bootstrap(fn: Callable[[np.ndarray], dict[str, Any]], groups: Any, n_boot: int, seed: int,
                      alpha: float = 0.05) -> dict[str, tuple[float, float]]:
    """Percentile (1 - alpha) CIs of every number `fn(sample_indices)` returns, resampling patients.

    `fn` scores the samples at the given indices. A resample in which a number is undefined (NaN, e.g.
    an AUROC with one class) does not count for that number; n_boot=0 gives no CIs.
    """
    groups = np.asarray(groups).ravel()
    _, group_ids, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    members = np.split(np.argsort(group_ids, kind="stable"), np.cumsum(sizes)[:-1])
    rng = np.random.default_rng(seed)
    draws: dict[str, list[float]] = {}
    for _ in range(n_boot):
        chosen = rng.integers(0, len(members), size=len(members))
        for key, value in flat_numbers(fn(np.concatenate([members[g] for g in chosen]))).items():
            if np.isfinite(value):
                draws.setdefault(key, []).append(value)
    return {key: (float(np.quantile(v, alpha / 2)), float(np.quantile(v, 1 - alpha / 2)))
            for key, v in draws.items()}
