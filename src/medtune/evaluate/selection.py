"""Choices made on validation predictions, never on test: the operating threshold(s) and the val metrics."""

from __future__ import annotations

from typing import Any

from torch import nn

from medtune.data.datamodule import SplitArrays
from medtune.evaluate.metrics import task_metrics
from medtune.evaluate.thresholds import choose_threshold, label_thresholds
from medtune.models.inference import predict_proba
from medtune.task import Task


def validate_model(net: nn.Module, val: SplitArrays, task: Task) -> tuple[Any, dict[str, Any]]:
    """Threshold (binary: Youden's J; multilabel: one per label; else None) and metrics on validation."""
    out = predict_proba(net, val.x)
    threshold: Any = None
    if task.kind == "binary":
        threshold = choose_threshold(val.y, out)
    elif task.kind == "multilabel":
        threshold = label_thresholds(val.y, out)
    return threshold, task_metrics(task.kind, val.y, out, threshold, list(task.names))
