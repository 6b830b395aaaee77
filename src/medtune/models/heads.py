"""Per task: the training loss on the network's outputs, the weights that balance it, the val metrics.

The standard output layers: sigmoid + binary cross-entropy (binary: one logit; multilabel: one per
label, a missing label masked out), softmax + cross-entropy (multiclass), a linear unit + MSE (Huber and
MAE as options) on the target standardised on train (regression). Class imbalance is met with weights
computed on the training split only: pos_weight per logit, class weights for softmax.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, Metric, R2Score
from torchmetrics.classification import (
    BinaryAccuracy,
    BinaryAUROC,
    MulticlassAccuracy,
    MulticlassAUROC,
    MultilabelAccuracy,
    MultilabelAUROC,
)

from medtune.task import METRICS

MISSING = -1  # a masked multilabel target, as torchmetrics' ignore_index


def loss_weights(task: str, y: np.ndarray, outputs: int) -> list[float] | None:
    """Training-split weights: pos_weight per logit (n_neg / n_pos; binary, multilabel), inverse class
    frequency normalised to mean 1 (multiclass), none (regression). An absent class counts as seen once."""
    if task == "regression":
        return None
    if task == "multiclass":
        counts = np.maximum(np.bincount(y.astype(int), minlength=outputs), 1).astype(np.float64)
        inv = 1.0 / counts
        return (inv * outputs / inv.sum()).tolist()
    labels = y.reshape(len(y), -1).astype(np.float64)
    pos, neg = np.nansum(labels == 1, axis=0), np.nansum(labels == 0, axis=0)
    return (np.maximum(neg, 1) / np.maximum(pos, 1)).tolist()


def task_loss(task: str, outputs: torch.Tensor, y: torch.Tensor, weights: torch.Tensor | None,
              regression_loss: str = "mse", scale: torch.Tensor | None = None) -> torch.Tensor:
    """The loss of one batch. Regression compares in standard units: (output - y) / the train std."""
    if task == "binary":
        return nn.functional.binary_cross_entropy_with_logits(outputs[:, 0], y.float(), pos_weight=weights)
    if task == "multiclass":
        return nn.functional.cross_entropy(outputs, y.long(), weight=weights)
    if task == "multilabel":
        seen = ~torch.isnan(y)
        per_cell = nn.functional.binary_cross_entropy_with_logits(
            outputs, torch.nan_to_num(y), pos_weight=weights, reduction="none")
        return (per_cell * seen).sum() / seen.sum().clamp_min(1)
    error = (outputs[:, 0] - y.float()) / (scale if scale is not None else 1.0)
    zero = torch.zeros_like(error)
    return {"mse": nn.functional.mse_loss, "huber": nn.functional.huber_loss,
            "mae": nn.functional.l1_loss}[regression_loss](error, zero)


def task_metrics(task: str, outputs: int) -> nn.ModuleDict:
    """torchmetrics for the validation epoch, keyed by the logged name (METRICS[task])."""
    if task == "binary":
        made: list[Metric] = [BinaryAUROC(), BinaryAccuracy()]
    elif task == "multiclass":
        made = [MulticlassAUROC(outputs, average="macro"), MulticlassAccuracy(outputs, average="micro")]
    elif task == "multilabel":
        made = [MultilabelAUROC(outputs, average="macro", ignore_index=MISSING),
                MultilabelAccuracy(outputs, average="macro", ignore_index=MISSING)]
    else:
        made = [MeanAbsoluteError(), MeanSquaredError(squared=False), R2Score()]
    return nn.ModuleDict(dict(zip(METRICS[task], made)))


def metric_target(task: str, y: torch.Tensor) -> torch.Tensor:
    """Targets as the metrics want them: int classes, int labels with MISSING, or floats."""
    if task == "multilabel":
        return torch.nan_to_num(y, nan=float(MISSING)).long()
    return y.float() if task == "regression" else y.long()
