"""What the driver hands Tune for each trial, light enough for the driver to import.

The training code a trial runs (`medtune.tune.trial`: Lightning, ~2.5 s to import) is imported on the
worker, where Ray preloaded it (`runner.connect`), never in the tune stage's process, which only builds
and watches the sweep. Tune names trial folders after this function: `guarded_trial_<id>_...`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from ray import tune

TRIAL_MODULE = "medtune.tune.trial"  # what Ray's workers import at start: train_trial and its stack


def guarded_trial(config: dict[str, Any], metric: str, trial_fn: Callable[..., None] | None = None,
                  **kwargs: Any) -> None:
    """One trial: `trial_fn` (default: trial.train_trial) on the sampled config. Out of memory ends this
    trial with reason `oom` instead of an error Tune would retry: a config that does not fit will not fit
    on the second try either, and the sweep goes on."""
    if trial_fn is None:
        from medtune.tune.trial import train_trial as trial_fn  # TRIAL_MODULE: on the worker only
    try:
        trial_fn(config, metric=metric, **kwargs)
    except torch.OutOfMemoryError as exc:
        tune.report({"oom": 1.0, f"best_{metric}": float("nan"), "error": str(exc).splitlines()[0][:300]})
