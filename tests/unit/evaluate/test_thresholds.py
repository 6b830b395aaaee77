"""Operating points chosen on validation: Youden's J, per label for multilabel."""

from __future__ import annotations

import numpy as np
import pytest

from medtune.errors import ConfigError, DataError
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


def sens_spec(y: np.ndarray, p: np.ndarray, threshold: float) -> tuple[float, float]:
    pred = p >= threshold
    return pred[y == 1].mean(), 1 - pred[y == 0].mean()


def test_sensitivity_and_specificity_rules_hold_their_target_and_do_best_on_the_other() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 300), 0, 1)
    cuts = np.unique(p)
    t = choose_threshold(y, p, "sensitivity:0.95")
    sens, spec = sens_spec(y, p, t)
    assert sens >= 0.95 and spec == pytest.approx(max(sens_spec(y, p, c)[1] for c in cuts
                                                       if sens_spec(y, p, c)[0] >= 0.95))
    t = choose_threshold(y, p, "specificity:0.9")
    sens, spec = sens_spec(y, p, t)
    assert spec >= 0.9 and sens == pytest.approx(max(sens_spec(y, p, c)[0] for c in cuts
                                                      if sens_spec(y, p, c)[1] >= 0.9))


def test_f1_rule_maximises_f1_and_a_number_is_fixed() -> None:
    def f1(t: float) -> float:
        pred = P_HAND >= t
        tp = (pred & (Y_HAND == 1)).sum()
        return 2 * tp / (pred.sum() + (Y_HAND == 1).sum())

    assert f1(choose_threshold(Y_HAND, P_HAND, "f1")) == pytest.approx(max(f1(c) for c in P_HAND))
    assert choose_threshold(Y_HAND, P_HAND, "0.5") == 0.5
    assert label_thresholds(np.array([[1.0], [1.0]]), np.array([[0.2], [0.9]]), "0.3") == [0.3]


@pytest.mark.parametrize("rule", ["yuden", "sensitivity:1.5", "specificity", "1.2", "sensitivity:x"])
def test_a_bad_threshold_rule_is_one_line_naming_the_forms(rule: str) -> None:
    with pytest.raises(ConfigError, match=r"registry.threshold: .* is not one of youden, f1, sensitivity:<x"):
        choose_threshold(Y_HAND, P_HAND, rule)
