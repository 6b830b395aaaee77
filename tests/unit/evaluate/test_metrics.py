"""Metrics: thresholds, binary/multi-class metrics, the patient bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medtune.errors import DataError
from medtune.evaluate.metrics import binary_metrics, bootstrap_auroc_ci, choose_threshold, multiclass_metrics

# 4 positives, 6 negatives; at threshold 0.5: tp=3 fn=1 fp=1 tn=5
Y_HAND = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
P_HAND = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4, 0.45, 0.05])


def youden(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    pred = p >= threshold
    return pred[y == 1].mean() - pred[y == 0].mean()


def whale_cohort() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40 one-image patients ranked fairly well, plus one patient with 50 badly ranked positive images."""
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(20), np.zeros(20), np.ones(50)].astype(int)
    p = np.r_[rng.uniform(0.4, 1.0, 20), rng.uniform(0.0, 0.6, 20), np.full(50, 0.1)]
    groups = np.r_[np.arange(40), np.full(50, 99)]
    return y, p, groups


def test_threshold_is_youden_on_known_example() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.65, 0.5, 0.7, 0.8, 0.9, 0.95])
    # J at 0.5 = 1 - 1/4 = 0.75; J at 0.7 = 4/5 - 0 = 0.8 (the best)
    assert choose_threshold(y, p) == pytest.approx(0.7)


def test_threshold_maximises_j_over_every_cut() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 200), 0, 1)
    best = max(youden(y, p, t) for t in np.unique(p))
    assert youden(y, p, choose_threshold(y, p)) == pytest.approx(best)
    with pytest.raises(DataError, match="only one class"):
        choose_threshold(np.ones(5), np.linspace(0, 1, 5))


def test_binary_metrics_match_hand_computed_confusion() -> None:
    m = binary_metrics(Y_HAND, P_HAND, 0.5)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(5 / 6)
    assert m["accuracy"] == pytest.approx(8 / 10)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 5 / 6) / 2)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert m["auroc"] == pytest.approx(20 / 24)  # 20 of 24 positive-negative pairs ranked right
    assert (m["n"], m["n_pos"]) == (10, 4)
    # a probability equal to the threshold counts as positive: 0.7 and above -> tp=2, fp=1
    at = binary_metrics(Y_HAND, P_HAND, 0.7)
    assert (at["sensitivity"], at["specificity"]) == (pytest.approx(2 / 4), pytest.approx(5 / 6))


def test_multiclass_metrics_hand_example() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    prob = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.7, 0.2, 0.1],
            [0.2, 0.7, 0.1],
            [0.1, 0.4, 0.5],  # class 1 called 2, yet every one-vs-rest ranking stays perfect
            [0.1, 0.1, 0.8],
            [0.0, 0.1, 0.9],
        ]
    )
    m = multiclass_metrics(y, prob)
    assert m["auroc"] == pytest.approx(1.0)
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["per_class_recall"] == {"0": 1.0, "1": 0.5, "2": 1.0}
    assert m["per_class_auroc"] == {"0": 1.0, "1": 1.0, "2": 1.0}
    assert m["per_class_f1"] == pytest.approx({"0": 1.0, "1": 2 / 3, "2": 0.8})
    assert m["f1_macro"] == pytest.approx((1 + 2 / 3 + 0.8) / 3)
    assert m["balanced_accuracy"] == pytest.approx(2.5 / 3)


def test_bootstrap_is_seeded_and_brackets_the_auroc() -> None:
    y, p, groups = whale_cohort()
    ci = bootstrap_auroc_ci(y, p, groups, n_boot=300, seed=5)
    assert ci == bootstrap_auroc_ci(y, p, groups, n_boot=300, seed=5)
    assert ci != bootstrap_auroc_ci(y, p, groups, n_boot=300, seed=6)
    assert ci[0] < binary_metrics(y, p, 0.5)["auroc"] < ci[1]
    assert all(math.isnan(v) for v in bootstrap_auroc_ci(y, p, groups, n_boot=0, seed=5))
    assert all(math.isnan(v) for v in bootstrap_auroc_ci(np.ones(6), p[:6], np.arange(6), 50, seed=0))


def test_bootstrap_resamples_patients_not_images() -> None:
    y, p, groups = whale_cohort()
    by_patient = bootstrap_auroc_ci(y, p, groups, n_boot=400, seed=0)
    by_image = bootstrap_auroc_ci(y, p, np.arange(len(y)), n_boot=400, seed=0)
    # the 50-image patient is drawn whole or not at all, so the AUROC swings far more
    assert by_patient[1] - by_patient[0] > 2 * (by_image[1] - by_image[0])


def test_bootstrap_ignores_copies_inside_a_patient() -> None:
    # Tripling every image inside its own patient leaves each patient resample's AUROC unchanged,
    # so a patient bootstrap gives the identical CI; an image bootstrap would not.
    y, p, groups = whale_cohort()
    y3, p3, g3 = np.repeat(y, 3), np.repeat(p, 3), np.repeat(groups, 3)
    assert bootstrap_auroc_ci(y3, p3, g3, 200, seed=2) == pytest.approx(
        bootstrap_auroc_ci(y, p, groups, 200, seed=2)
    )
    one_per_image = bootstrap_auroc_ci(y, p, np.arange(len(y)), 200, seed=2)
    assert bootstrap_auroc_ci(y3, p3, np.arange(len(y3)), 200, seed=2) != pytest.approx(one_per_image)


def test_bootstrap_auroc_matches_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    from medtune.evaluate.metrics import _fast_auroc

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.uniform(size=300) + 0.2 * y, 1)  # coarse values: many ties
    assert _fast_auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
