"""Calibration fitted on validation (or out-of-fold) predictions, and how well calibrated outputs are.

The fit returns the plain dict `medtune.models.inference.calibrate` applies (stored in the model's meta),
so the registered model, test, predict and serve all apply the same numbers. ECE comes from torchmetrics
(15 equal-width bins, L1) and the Brier score from scikit-learn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss
from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

from medtune.models.inference import calibrate, logits_of

ECE_BINS = 15


def _fit_column(y: np.ndarray, p: np.ndarray, method: str) -> tuple[float, float]:
    """(scale, bias) on one binary column's logits; (1, 0) when the column holds one class."""
    if len(np.unique(y)) < 2:
        return 1.0, 0.0
    z = logits_of(p)
    if method == "platt":
        fit = LogisticRegression(C=1e6).fit(z[:, None], y)
        return float(fit.coef_[0, 0]), float(fit.intercept_[0])
    found = minimize_scalar(lambda s: log_loss(y, 1 / (1 + np.exp(-np.exp(s) * z)), labels=[0, 1]),
                            bounds=(-5.0, 5.0), method="bounded")
    return float(np.exp(found.x)), 0.0


def _binary_columns(kind: str, y: np.ndarray, p: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(targets, probabilities) per sigmoid output: the one binary column, or each multilabel label with
    its unread cells (NaN) left out."""
    if kind == "binary":
        return [(y, p)]
    return [(y[~np.isnan(y[:, i]), i], p[~np.isnan(y[:, i]), i]) for i in range(p.shape[1])]


def fit_calibration(kind: str, y: Any, out: Any, method: str) -> dict[str, Any] | None:
    """Fit `method` (temperature | platt | none) on validation outputs; None for none and regression.
    Multiclass is temperature-scaled (one scale on the log-probabilities) whichever method is asked."""
    if method == "none" or kind == "regression":
        return None
    y, p = np.asarray(y, dtype=float), np.asarray(out, dtype=float)
    if kind == "multiclass":
        def nll(log_scale: float) -> float:
            scaled = calibrate(p, kind, {"scale": [np.exp(log_scale)], "bias": [0.0]})
            return log_loss(y.astype(int), scaled, labels=list(range(p.shape[1])))

        found = minimize_scalar(nll, bounds=(-5.0, 5.0), method="bounded")
        return {"method": "temperature", "scale": [float(np.exp(found.x))], "bias": [0.0]}
    fitted = [_fit_column(c.astype(int), q, method) for c, q in _binary_columns(kind, y, p)]
    return {"method": method, "scale": [s for s, _ in fitted], "bias": [b for _, b in fitted]}


def calibration_metrics(kind: str, y: Any, out: Any) -> dict[str, float]:
    """Expected calibration error and Brier score (multilabel: their means over labels); {} for regression."""
    if kind == "regression":
        return {}
    y, p = np.asarray(y, dtype=float), np.asarray(out, dtype=float)
    if kind == "multiclass":
        target = torch.as_tensor(y.astype(int))
        ece = multiclass_calibration_error(torch.as_tensor(p), target, p.shape[1], n_bins=ECE_BINS)
        brier = float(np.mean(np.sum((p - np.eye(p.shape[1])[y.astype(int)]) ** 2, axis=1)))
        return {"ece": float(ece), "brier": brier}
    columns = _binary_columns(kind, y, p)
    eces = [float(binary_calibration_error(torch.as_tensor(q), torch.as_tensor(c.astype(int)), n_bins=ECE_BINS))
            for c, q in columns if len(c)]
    briers = [float(brier_score_loss(c.astype(int), q, labels=[0, 1])) for c, q in columns if len(c)]
    return {"ece": float(np.mean(eces)), "brier": float(np.mean(briers))}
