"""Test-report plots: ROC, confusion and calibration as DVC plot CSVs plus matching PNGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import metrics as skm

from medtune.evaluate.metrics import binary_inputs, binary_metrics
from medtune.jsonio import atomic_path, write_table

N_CALIBRATION_BINS = 10


def calibration_table(y_true: Any, prob: Any, n_bins: int = N_CALIBRATION_BINS) -> pd.DataFrame:
    """Reliability table over equal-width probability bins; empty bins are left out."""
    y, p = binary_inputs(y_true, prob)
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    frame = pd.DataFrame({"bin": bins, "p": p, "y": y}).groupby("bin", as_index=False)
    table = frame.agg(mean_predicted=("p", "mean"), fraction_positive=("y", "mean"))
    return table[["bin", "mean_predicted", "fraction_positive"]]


def write_plots(y_true: Any, prob: Any, threshold: float, out_dir: Path) -> dict[str, Path]:
    """Write DVC plot data (roc, confusion, calibration CSVs) and matching PNGs; return their paths."""
    y, p = binary_inputs(y_true, prob)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fpr, tpr, _ = skm.roc_curve(y, p)
    roc = pd.DataFrame({"fpr": fpr, "tpr": tpr})
    confusion = pd.DataFrame({"actual": y, "predicted": (p >= threshold).astype(int)})
    calibration = calibration_table(y, p)
    paths = {name: out_dir / name for name in ("roc.csv", "confusion.csv", "calibration.csv")}
    write_table(roc, paths["roc.csv"])
    write_table(confusion, paths["confusion.csv"])
    write_table(calibration, paths["calibration.csv"])
    paths["roc.png"] = save_figure(_roc_figure(roc, y, p, threshold), out_dir / "roc.png")
    paths["confusion.png"] = save_figure(_confusion_figure(confusion), out_dir / "confusion.png")
    paths["calibration.png"] = save_figure(_calibration_figure(calibration), out_dir / "calibration.png")
    return paths


# Figures are built with matplotlib.figure.Figure, which renders with Agg on savefig without
# touching pyplot's global backend or figure registry (safe in workers and tests).
def save_figure(fig: Figure, path: Path) -> Path:
    """Render a figure to `path`, all or nothing."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    return path


def _roc_figure(roc: pd.DataFrame, y: np.ndarray, p: np.ndarray, threshold: float) -> Figure:
    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot()
    auroc = skm.roc_auc_score(y, p) if len(np.unique(y)) == 2 else float("nan")
    ax.plot(roc["fpr"], roc["tpr"], label=f"AUROC {auroc:.3f}")
    at = binary_metrics(y, p, threshold)
    ax.plot(1 - at["specificity"], at["sensitivity"], "o", label=f"threshold {threshold:.3f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
    ax.legend(loc="lower right")
    return fig


def _confusion_figure(confusion: pd.DataFrame) -> Figure:
    counts = skm.confusion_matrix(confusion["actual"], confusion["predicted"], labels=[0, 1])
    fig = Figure(figsize=(3.5, 3.5))
    ax = fig.add_subplot()
    ax.imshow(counts, cmap="Blues")
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, str(n), ha="center", va="center")
    ax.set(xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="actual", title="confusion")
    return fig


def _calibration_figure(calibration: pd.DataFrame) -> Figure:
    fig = Figure(figsize=(4, 4))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], ":", color="grey", label="perfect")
    ax.plot(calibration["mean_predicted"], calibration["fraction_positive"], "o-", label="model")
    ax.set(xlabel="mean predicted probability", ylabel="fraction positive", title="calibration")
    ax.legend(loc="upper left")
    return fig
