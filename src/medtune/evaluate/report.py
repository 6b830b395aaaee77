"""The test report: metrics at the model's stored threshold with patient CIs, plots, breakdown, Grad-CAM.

Everything here takes predictions and a threshold that came with the model (chosen on validation);
none of it fits anything on the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medtune.config import Params
from medtune.data.datamodule import SplitArrays
from medtune.evaluate.breakdown import breakdown, write_breakdown
from medtune.evaluate.gradcam import write_gradcam_grid
from medtune.evaluate.metrics import binary_metrics, bootstrap_auroc_ci, multiclass_metrics
from medtune.evaluate.plots import write_plots
from medtune.models.nets import NetSpec

PREDICT_CHUNK = 1024


def score_test(y: np.ndarray, probs: np.ndarray, patient_keys: list[str], meta: dict[str, Any],
               n_boot: int, seed: int) -> dict[str, Any]:
    """Test metrics at the model's stored threshold (`meta["threshold"]`), AUROC CI resampling patients."""
    if probs.shape[1] != 2:
        return multiclass_metrics(y, probs)
    prob, threshold = probs[:, 1], float(meta["threshold"])
    metrics = binary_metrics(y, prob, threshold)
    low, high = bootstrap_auroc_ci(y, prob, patient_keys, n_boot, seed)
    return metrics | {"auroc_ci_low": low, "auroc_ci_high": high, "threshold": threshold}


def score_and_report(model: Any, test: SplitArrays, rows: pd.DataFrame, params: Params,
                     out_dir: Path) -> tuple[dict, dict[str, Path]]:
    """Metrics, plots, per-site breakdown and Grad-CAM grid of a registered pyfunc on the test arrays.

    `rows` are the index rows of the test samples, in the order of `test`.
    """
    meta = model.unwrap_python_model().meta
    # In chunks: the test split is read from the store a batch at a time, never as one float array.
    frame = pd.concat([model.predict(test.x[i:i + PREDICT_CHUNK]) for i in range(0, len(test), PREDICT_CHUNK)],
                      ignore_index=True)
    probs = frame[[f"prob_{c}" for c in meta["class_names"]]].to_numpy()
    metrics = score_test(test.y, probs, test.patient_keys, meta, params.test.bootstrap, params.base.seed)
    threshold = float(meta.get("threshold", 0.5))
    outputs: dict[str, Path] = {}
    if probs.shape[1] == 2:
        outputs |= write_plots(test.y, probs[:, 1], threshold, out_dir)
    outputs |= write_breakdown(breakdown(rows, test.y, probs, threshold), out_dir)
    prob = probs[:, 1] if probs.shape[1] == 2 else probs
    grid = write_gradcam_grid(model.unwrap_python_model().net, NetSpec(**meta["net"]), test.x, test.y, prob,
                              threshold, meta["class_names"], params.test.gradcam_cases, out_dir / "gradcam.png")
    if grid is not None:
        outputs["gradcam.png"] = grid
    return metrics, outputs
