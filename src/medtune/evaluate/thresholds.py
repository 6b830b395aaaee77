"""Operating points, chosen on validation (or out-of-fold) predictions only, never on test.

A sample is called positive when its probability >= the threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import metrics as skm

from medtune.errors import DataError
from medtune.evaluate.metrics import binary_inputs


def choose_threshold(y_true: Any, prob: Any) -> float:
    """Threshold maximising Youden's J (sensitivity + specificity - 1); choose it on validation only.

    A sample is called positive when prob >= threshold.
    """
    y, p = binary_inputs(y_true, prob)
    if len(np.unique(y)) < 2:
        raise DataError("validation predictions hold only one class; cannot choose a threshold")
    fpr, tpr, thresholds = skm.roc_curve(y, p, drop_intermediate=False)
    best = int(np.argmax(tpr - fpr))  # first maximum = highest threshold among ties
    return float(min(thresholds[best], 1.0))  # roc_curve's first threshold is +inf (all negative)


def label_thresholds(y_true: Any, prob: Any) -> list[float]:
    """Youden's J per label of a multilabel task; 0.5 for a label whose validation cells hold one class."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(prob, dtype=float)
    out = []
    for i in range(p.shape[1]):
        seen = ~np.isnan(y[:, i])
        labels = y[seen, i].astype(int)
        out.append(choose_threshold(labels, p[seen, i]) if len(np.unique(labels)) == 2 else 0.5)
    return out
