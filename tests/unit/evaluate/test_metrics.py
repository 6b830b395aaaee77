"""Metrics per task: binary, multiclass, multilabel, regression."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medtune.evaluate.metrics import auroc, binary_metrics, multiclass_metrics, multilabel_metrics, regression_metrics

# 4 positives, 6 negatives; at threshold 0.5: tp=3 fn=1 fp=1 tn=5
Y_HAND = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
P_HAND = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4, 0.45, 0.05])


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
    assert m["per_class_precision"] == pytest.approx({"0": 1.0, "1": 1.0, "2": 2 / 3})
    assert m["per_class_auroc"] == {"0": 1.0, "1": 1.0, "2": 1.0}
    assert m["per_class_f1"] == pytest.approx({"0": 1.0, "1": 2 / 3, "2": 0.8})
    assert m["confusion"] == [[2, 0, 0], [0, 1, 1], [0, 0, 2]]
    assert m["f1_macro"] == pytest.approx((1 + 2 / 3 + 0.8) / 3)
    assert m["balanced_accuracy"] == pytest.approx(2.5 / 3)


def test_multilabel_metrics_mask_unread_cells() -> None:
    y = np.array([[1, 0], [0, 1], [1, np.nan], [0, 0]], dtype=float)
    p = np.array([[0.9, 0.1], [0.2, 0.8], [0.8, 0.9], [0.1, 0.2]])
    m = multilabel_metrics(y, p, [0.5, 0.5], ["ring", "bar"])
    assert m["per_label_auroc"] == {"ring": 1.0, "bar": 1.0} and m["auroc"] == 1.0
    assert m["per_label_sensitivity"]["bar"] == 1.0 and m["n"] == 4  # the unread cell is left out


def test_regression_metrics_hand_example() -> None:
    m = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 6.0])
    assert m["mae"] == pytest.approx(0.5) and m["rmse"] == pytest.approx(1.0)
    assert m["r2"] == pytest.approx(1 - 4 / 5)


def test_auroc_matches_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.uniform(size=300) + 0.2 * y, 1)  # coarse values: many ties
    assert auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert math.isnan(auroc(np.ones(5), p[:5]))
