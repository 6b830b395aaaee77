"""Scoring a test split at the stored (validation) threshold."""

from __future__ import annotations

import numpy as np
import pytest

from medtune.evaluate.metrics import binary_metrics, choose_threshold
from medtune.evaluate.report import score_test


def test_score_test_uses_the_stored_threshold_not_one_fitted_on_test() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    prob = np.clip(0.5 * y + rng.normal(0.25, 0.2, 300), 0, 1)
    probs = np.c_[1 - prob, prob]
    stored = 0.8  # what promote chose on validation
    fitted_on_test = choose_threshold(y, prob)
    assert abs(fitted_on_test - stored) > 0.1
    metrics = score_test(y, probs, [str(i) for i in range(300)], {"threshold": stored}, n_boot=50, seed=0)
    assert metrics["threshold"] == stored
    at_stored, at_test = binary_metrics(y, prob, stored), binary_metrics(y, prob, fitted_on_test)
    for key in ("sensitivity", "specificity", "accuracy", "f1"):
        assert metrics[key] == pytest.approx(at_stored[key])
    assert metrics["balanced_accuracy"] < at_test["balanced_accuracy"]  # Youden on test would flatter it
    assert metrics["auroc_ci_low"] < metrics["auroc"] < metrics["auroc_ci_high"]
