"""Choices made on validation predictions, never on test: the operating threshold and the val metrics."""

from __future__ import annotations

from typing import Any

from torch import nn

from medtune.data.datamodule import SplitArrays
from medtune.evaluate.metrics import binary_metrics, choose_threshold, multiclass_metrics
from medtune.models.inference import predict_proba


def validate_model(net: nn.Module, val: SplitArrays) -> tuple[float, dict[str, Any]]:
    """Threshold (Youden's J, binary) and metrics of a trained net on the validation split."""
    prob = predict_proba(net, val.x)
    if prob.ndim == 1:
        threshold = choose_threshold(val.y, prob)
        return threshold, binary_metrics(val.y, prob, threshold)
    return 0.5, multiclass_metrics(val.y, prob)
