"""Metrics per task, on predictions that came with their threshold (chosen on validation, never here).

binary: AUROC, accuracy, balanced accuracy, sensitivity, specificity, F1; multiclass: macro AUROC,
accuracy, balanced accuracy, macro F1 and per-class recall/precision/F1/AUROC; multilabel: per-label and
macro AUROC, per-label sensitivity/specificity; regression: MAE, RMSE, R². `evaluate.bootstrap` adds
patient-level CIs to any of them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import rankdata

NAN = float("nan")


def binary_inputs(y_true: Any, prob: Any) -> tuple[np.ndarray, np.ndarray]:
    y, p = np.asarray(y_true).astype(int).ravel(), np.asarray(prob, dtype=float)
    if p.ndim != 1 or len(p) != len(y):
        raise ValueError(f"expected 1-D probabilities matching {len(y)} labels, got shape {p.shape}")
    if not set(np.unique(y)) <= {0, 1}:
        raise ValueError("binary metrics need labels in {0, 1}")
    return y, p


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else NAN


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """AUROC as the Mann-Whitney U statistic (ties count half): sklearn's value at a fraction of the cost,
    which matters inside a 1000-resample bootstrap. NaN when y holds one class."""
    y = np.asarray(y).astype(int)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return NAN
    ranks = rankdata(p)
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def binary_metrics(y_true: Any, prob: Any, threshold: float) -> dict[str, Any]:
    """AUROC plus threshold metrics (accuracy, balanced accuracy, sensitivity, specificity, F1)."""
    y, p = binary_inputs(y_true, prob)
    pred = (p >= threshold).astype(int)
    tp, fn = int(((pred == 1) & (y == 1)).sum()), int(((pred == 0) & (y == 1)).sum())
    tn, fp = int(((pred == 0) & (y == 0)).sum()), int(((pred == 1) & (y == 0)).sum())
    sensitivity, specificity = _ratio(tp, tp + fn), _ratio(tn, tn + fp)
    return {
        "auroc": auroc(y, p),
        "accuracy": _ratio(tp + tn, len(y)),
        "balanced_accuracy": float(np.nanmean([sensitivity, specificity])) if tp + fn or tn + fp else NAN,
        "sensitivity": sensitivity,
        "specificity": specificity,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "threshold": float(threshold),
        "n": len(y),
        "n_pos": int(y.sum()),
    }


def multiclass_metrics(y_true: Any, prob: Any, names: list[str] | None = None) -> dict[str, Any]:
    """Macro one-vs-rest AUROC (over classes present), accuracy, balanced accuracy, macro F1, and per
    class recall, precision, F1 and AUROC keyed by class name; the confusion matrix (rows: true)."""
    y, p = np.asarray(y_true).astype(int).ravel(), np.asarray(prob, dtype=float)
    if p.ndim != 2 or len(p) != len(y):
        raise ValueError(f"expected (N, C) probabilities for {len(y)} labels, got shape {p.shape}")
    names = names or [str(c) for c in range(p.shape[1])]
    pred = p.argmax(axis=1)
    confusion = np.zeros((p.shape[1], p.shape[1]), dtype=int)
    np.add.at(confusion, (y, pred), 1)
    tp = np.diag(confusion).astype(float)
    recall = np.array([_ratio(t, n) for t, n in zip(tp, confusion.sum(axis=1))])
    precision = np.array([_ratio(t, n) for t, n in zip(tp, confusion.sum(axis=0))])
    f1 = np.array([_ratio(2 * r * q, r + q) if r + q > 0 else 0.0 for r, q in zip(np.nan_to_num(recall),
                                                                               np.nan_to_num(precision))])
    one_vs_rest = np.array([auroc(y == c, p[:, c]) for c in range(p.shape[1])])
    return {
        "auroc": float(np.nanmean(one_vs_rest)) if np.isfinite(one_vs_rest).any() else NAN,
        "accuracy": _ratio(tp.sum(), len(y)),
        "balanced_accuracy": float(np.nanmean(recall)) if np.isfinite(recall).any() else NAN,
        "f1_macro": float(np.mean(f1)),
        "per_class_recall": dict(zip(names, recall.tolist())),
        "per_class_precision": dict(zip(names, precision.tolist())),
        "per_class_f1": dict(zip(names, f1.tolist())),
        "per_class_auroc": dict(zip(names, one_vs_rest.tolist())),
        "confusion": confusion.tolist(),
        "n": len(y),
    }


def multilabel_metrics(y_true: Any, prob: Any, thresholds: Any, names: list[str] | None = None) -> dict[str, Any]:
    """Per-label AUROC, sensitivity and specificity at each label's threshold (unread cells, NaN, left
    out per label) and their macro means."""
    y, p = np.asarray(y_true, dtype=float), np.asarray(prob, dtype=float)
    names = names or [str(i) for i in range(p.shape[1])]
    per: dict[str, dict[str, float]] = {"auroc": {}, "sensitivity": {}, "specificity": {}}
    for i, name in enumerate(names):
        seen = ~np.isnan(y[:, i])
        scored = binary_metrics(y[seen, i].astype(int), p[seen, i], float(np.ravel(thresholds)[i]))
        for key in per:
            per[key][name] = scored[key]
    macro = {key: float(np.nanmean(list(v.values()))) if any(map(math.isfinite, v.values())) else NAN
             for key, v in per.items()}
    return {"auroc": macro["auroc"], "sensitivity": macro["sensitivity"], "specificity": macro["specificity"],
            **{f"per_label_{key}": values for key, values in per.items()}, "n": len(y)}


def regression_metrics(y_true: Any, pred: Any) -> dict[str, Any]:
    """Mean absolute error, root mean squared error and R² (1 - SSE / SST; NaN for a constant target)."""
    y, q = np.asarray(y_true, dtype=float).ravel(), np.asarray(pred, dtype=float).ravel()
    error = q - y
    sst = float(((y - y.mean()) ** 2).sum())
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error**2).mean())),
            "r2": 1.0 - float((error**2).sum()) / sst if sst > 0 else NAN, "n": len(y)}


def task_metrics(kind: str, y: Any, out: Any, threshold: Any = None, names: list[str] | None = None) -> dict:
    """The metrics of one task's predictions (probabilities or values) at the model's threshold(s)."""
    if kind == "binary":
        return binary_metrics(y, out, 0.5 if threshold is None else float(threshold))
    if kind == "multiclass":
        return multiclass_metrics(y, out, names)
    if kind == "multilabel":
        return multilabel_metrics(y, out, np.full(np.shape(out)[1], 0.5) if threshold is None else threshold, names)
    return regression_metrics(y, out)
