"""Operating points chosen on validation: Youden's J, per label for multilabel."""

from __future__ import annotations

import numpy as np
import pytest

from medtune.errors import DataError
from medtune.evaluate.thresholds import choose_threshold, label_thresholds

# 4 positives, 6 negatives; at threshold 0.5: tp=3 fn=1 fp=1 tn=5
Y_HAND = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
P_HAND = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4, 0.45, 0.05])


def youden(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    pred = p >= threshold
    return pred[y == 1].mean() - pred[y == 0].mean()


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


def test_label_thresholds_per_label_and_one_class_labels_at_half() -> None:
    y = np.array([[1, 0], [1, 0], [0, 0], [0, np.nan]], dtype=float)
    p = np.array([[0.9, 0.2], [0.7, 0.3], [0.2, 0.1], [0.1, 0.9]])
    thresholds = label_thresholds(y, p)
    assert thresholds[0] == pytest.approx(0.7) and thresholds[1] == 0.5
