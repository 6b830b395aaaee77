"""Scoring a test split at the stored (validation) threshold, with patient CIs and plain warnings."""

from __future__ import annotations

import numpy as np
import pytest

from medtune.evaluate.metrics import binary_metrics
from medtune.evaluate.report import score_test
from medtune.evaluate.thresholds import choose_threshold
from medtune.task import Task

BINARY = Task("binary", ("normal", "abnormal"))


def test_score_test_uses_the_stored_threshold_not_one_fitted_on_test() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    prob = np.clip(0.5 * y + rng.normal(0.25, 0.2, 300), 0, 1)
    stored = 0.8  # what promote chose on validation
    fitted_on_test = choose_threshold(y, prob)
    assert abs(fitted_on_test - stored) > 0.1
    metrics, details = score_test(BINARY, y, prob, [str(i) for i in range(300)], stored, n_boot=50, seed=0)
    assert metrics["threshold"] == stored
    at_stored, at_test = binary_metrics(y, prob, stored), binary_metrics(y, prob, fitted_on_test)
    for key in ("sensitivity", "specificity", "accuracy", "f1"):
        assert metrics[key] == pytest.approx(at_stored[key])
        assert metrics[f"{key}_ci_low"] <= metrics[key] <= metrics[f"{key}_ci_high"]
    assert metrics["balanced_accuracy"] < at_test["balanced_accuracy"]  # Youden on test would flatter it
    assert metrics["auroc_ci_low"] < metrics["auroc"] < metrics["auroc_ci_high"]
    assert details["warnings"] == [] and "auroc" in details["ci"] and "warning" not in metrics


def test_a_small_test_split_is_called_small() -> None:
    y = np.array([0, 1, 0, 1, 1, 0])
    prob = np.array([0.2, 0.7, 0.6, 0.4, 0.9, 0.1])
    metrics, details = score_test(BINARY, y, prob, list("abcdef"), 0.5, n_boot=200, seed=0)
    assert metrics["auroc_ci_high"] - metrics["auroc_ci_low"] > 0.2
    assert any("too few test patients" in w for w in details["warnings"])
    assert any("rests on very few patients" in w for w in details["warnings"])
    assert metrics["warning"] == " ".join(details["warnings"])  # metrics.json says it too


@pytest.mark.parametrize("task, headline", [
    (Task("multiclass", ("a", "b", "c")), "f1_macro"),
    (Task("multilabel", ("ring", "bar")), "sensitivity"),
    (Task("regression", ("radius",)), "r2"),
])
def test_every_task_gets_its_headline_metrics_with_cis(task: Task, headline: str) -> None:
    rng = np.random.default_rng(1)
    n = 60
    if task.kind == "multiclass":
        y = np.arange(n) % 3
        out = np.eye(3)[y] * 0.6 + rng.dirichlet(np.ones(3), n) * 0.4
    elif task.kind == "multilabel":
        y = rng.integers(0, 2, (n, 2)).astype(float)
        out = np.clip(0.6 * y + rng.random((n, 2)) * 0.4, 0, 1)
    else:
        y = rng.random(n) * 4
        out = y + rng.normal(0, 0.3, n)
    metrics, details = score_test(task, y, out, [str(i // 2) for i in range(n)], [0.5, 0.5], n_boot=50, seed=0)
    assert metrics["task"] == task.kind and metrics["n_patients"] == n // 2
    assert metrics[f"{headline}_ci_low"] <= metrics[headline] <= metrics[f"{headline}_ci_high"]
    if task.kind == "multilabel":
        assert set(details["per_label_auroc"]) == {"ring", "bar"} and "per_label_auroc.ring" in details["ci"]
    # metrics.json: every label's (class's) numbers with their CIs, beside the macro ones.
    per = {"multilabel": ("per_label", "auroc"), "multiclass": ("per_class", "recall")}.get(task.kind)
    if per is not None:
        group, key = per
        assert set(metrics[group]) == set(task.names)
        for name in task.names:
            entry = metrics[group][name]
            assert entry[f"{key}_ci_low"] <= entry[key] <= entry[f"{key}_ci_high"]
    else:
        assert "per_label" not in metrics and "per_class" not in metrics
