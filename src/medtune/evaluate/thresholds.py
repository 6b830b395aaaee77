"""Operating points, chosen on validation (or out-of-fold) predictions only, never on test.

A sample is called positive when its probability >= the threshold. The rule comes from
`registry.threshold` (`medtune.config.rules.parse_threshold_rule` is its one parser).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

from medtune.config.rules import parse_threshold_rule
from medtune.errors import DataError
from medtune.evaluate.metrics import binary_inputs


def _roc_pick(method: str, target: float | None, fpr: np.ndarray, tpr: np.ndarray) -> int:
    """Index into roc_curve's (decreasing) thresholds for a ROC-based rule."""
    if method == "youden":
        return int(np.argmax(tpr - fpr))  # first maximum = highest threshold among ties
    if method == "sensitivity":  # the highest threshold reaching it: the best specificity there
        return int(np.argmax(tpr >= target - 1e-12))
    return int(np.flatnonzero(1 - fpr >= target - 1e-12)[-1])  # specificity: the lowest threshold keeping it


def choose_threshold(y_true: Any, prob: Any, rule: str = "youden") -> float:
    """The threshold `rule` picks on these (validation) predictions: youden, f1, sensitivity:x,
    specificity:x or a fixed number."""
    method, target = parse_threshold_rule(rule)
    if method == "fixed":
        return float(target)
    y, p = binary_inputs(y_true, prob)
    if len(np.unique(y)) < 2:
        raise DataError("validation predictions hold only one class; cannot choose a threshold")
    if method == "f1":
        precision, recall, cuts = skm.precision_recall_curve(y, p, drop_intermediate=False)
        f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(precision),
                       where=precision + recall > 0)[:-1]  # the last point has no threshold
        return float(cuts[len(f1) - 1 - int(np.argmax(f1[::-1]))])  # cuts increase: the highest among ties
    fpr, tpr, thresholds = skm.roc_curve(y, p, drop_intermediate=False)
    return float(min(thresholds[_roc_pick(method, target, fpr, tpr)], 1.0))  # thresholds[0] is +inf


def label_thresholds(y_true: Any, prob: Any, rule: str = "youden") -> list[float]:
    """The rule's threshold per label of a multilabel task; for a label whose validation cells hold one
    class, the rule's fixed number or 0.5."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(prob, dtype=float)
    method, target = parse_threshold_rule(rule)
    fallback = float(target) if method == "fixed" else 0.5
    out = []
    for i in range(p.shape[1]):
        seen = ~np.isnan(y[:, i])
        labels = y[seen, i].astype(int)
        out.append(choose_threshold(labels, p[seen, i], rule) if len(np.unique(labels)) == 2 else fallback)
    return out
