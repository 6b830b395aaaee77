"""Choices made on validation predictions, never on test: calibration, the operating threshold(s), and the
validation metrics the gate compares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from torch import nn

from medtune.config import RegistryCfg
from medtune.data.datamodule import SplitArrays
from medtune.evaluate.calibration import calibration_metrics, fit_calibration
from medtune.evaluate.metrics import task_metrics
from medtune.evaluate.thresholds import choose_threshold, label_thresholds
from medtune.models.inference import calibrate, predict_proba
from medtune.task import Task


@dataclass
class Choice:
    """What promote decides on validation and stores with the model (`inference`), plus the val metrics."""

    threshold: Any
    calibration: dict[str, Any] | None
    tta: bool
    metrics: dict[str, Any]

    @property
    def inference(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "calibration": self.calibration, "tta": self.tta}

    def summary(self) -> str:
        """threshold, calibration and the val ECE it changed, for promote's output line."""
        method = self.calibration["method"] if self.calibration else "none"
        ece = (f" (val ECE {self.metrics['ece_raw']:.3f} -> {self.metrics['ece']:.3f})"
               if "ece" in self.metrics else "")
        return f"threshold={self.threshold}, calibration={method}{ece}, tta={self.tta}"


def choose_on_validation(task: Task, y: np.ndarray, raw: np.ndarray, cfg: RegistryCfg, tta: bool) -> Choice:
    """Fit the calibration on raw validation outputs, then pick the threshold on the calibrated ones (binary:
    `registry.threshold`; multilabel: per label; else None). Metrics carry ECE/Brier before and after
    (`ece_raw`, `brier_raw`; in-sample on validation, so the test report is the honest check)."""
    calibration = fit_calibration(task.kind, y, raw, cfg.calibration)
    out = calibrate(raw, task.kind, calibration)
    threshold: Any = None
    if task.kind == "binary":
        threshold = choose_threshold(y, out, cfg.threshold)
    elif task.kind == "multilabel":
        threshold = label_thresholds(y, out, cfg.threshold)
    metrics = task_metrics(task.kind, y, out, threshold, list(task.names))
    metrics |= {f"{k}_raw": v for k, v in calibration_metrics(task.kind, y, raw).items()}
    return Choice(threshold, calibration, tta, metrics | calibration_metrics(task.kind, y, out))


def validate_model(net: nn.Module, val: SplitArrays, task: Task, cfg: RegistryCfg) -> Choice:
    """One network's choices on the validation split (with `registry.tta` when set)."""
    return choose_on_validation(task, val.y, predict_proba(net, val.x, tta=cfg.tta), cfg, cfg.tta)
