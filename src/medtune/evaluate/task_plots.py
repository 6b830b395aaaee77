"""Test-report plots beyond binary ROC/calibration: multiclass confusion, multilabel ROC per label,
regression predicted-vs-true and residuals. Each is a DVC plot CSV plus a matching PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn import metrics as skm

from medtune.evaluate.plots import save_figure, write_plots
from medtune.jsonio import write_table
from medtune.task import Task


def write_task_plots(task: Task, y: np.ndarray, out: np.ndarray, threshold: Any, out_dir: Path) -> dict[str, Path]:
    """The plots that fit the task, written into out_dir; returns {file name: path}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if task.kind == "binary":
        return write_plots(y, out, float(threshold), out_dir)
    if task.kind == "multiclass":
        return _confusion(y, out, list(task.names), out_dir)
    if task.kind == "multilabel":
        return _label_rocs(y, out, list(task.names), out_dir)
    return _regression(y, out, task.names[0], out_dir)


def _confusion(y: np.ndarray, out: np.ndarray, names: list[str], out_dir: Path) -> dict[str, Path]:
    frame = pd.DataFrame({"actual": np.asarray(names)[y], "predicted": np.asarray(names)[out.argmax(axis=1)]})
    write_table(frame, out_dir / "confusion.csv")
    counts = skm.confusion_matrix(frame["actual"], frame["predicted"], labels=names)
    fig = Figure(figsize=(1 + 0.6 * len(names), 1 + 0.6 * len(names)))
    ax = fig.add_subplot()
    ax.imshow(counts, cmap="Blues")
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, str(n), ha="center", va="center", fontsize=7)
    ax.set(xticks=range(len(names)), yticks=range(len(names)), xlabel="predicted", ylabel="actual",
           title="confusion (test)")
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
    ax.set_yticklabels(names, fontsize=7)
    return {"confusion.csv": out_dir / "confusion.csv", "confusion.png": save_figure(fig, out_dir / "confusion.png")}


def _label_rocs(y: np.ndarray, out: np.ndarray, names: list[str], out_dir: Path) -> dict[str, Path]:
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    rows = []
    for i, name in enumerate(names):
        seen = ~np.isnan(y[:, i])
        labels = y[seen, i].astype(int)
        if len(np.unique(labels)) < 2:
            continue
        fpr, tpr, _ = skm.roc_curve(labels, out[seen, i])
        rows.append(pd.DataFrame({"label": name, "fpr": fpr, "tpr": tpr}))
        ax.plot(fpr, tpr, label=f"{name} {skm.roc_auc_score(labels, out[seen, i]):.3f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC per label (test)")
    ax.legend(loc="lower right", fontsize=7)
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["label", "fpr", "tpr"])
    write_table(table, out_dir / "roc.csv")
    return {"roc.csv": out_dir / "roc.csv", "roc.png": save_figure(fig, out_dir / "roc.png")}


def _regression(y: np.ndarray, out: np.ndarray, name: str, out_dir: Path) -> dict[str, Path]:
    y, out = np.asarray(y, dtype=float).ravel(), np.asarray(out, dtype=float).ravel()
    write_table(pd.DataFrame({"actual": y, "predicted": out}), out_dir / "scatter.csv")
    write_table(pd.DataFrame({"predicted": out, "residual": out - y}), out_dir / "residuals.csv")
    fig = Figure(figsize=(8, 4))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    low, high = float(min(y.min(), out.min())), float(max(y.max(), out.max()))
    left.plot([low, high], [low, high], ":", color="grey")
    left.scatter(y, out, s=8)
    left.set(xlabel=f"true {name}", ylabel=f"predicted {name}", title="predicted vs true (test)")
    right.axhline(0, ls=":", color="grey")
    right.scatter(out, out - y, s=8)
    right.set(xlabel=f"predicted {name}", ylabel="residual (predicted - true)", title="residuals (test)")
    return {"scatter.csv": out_dir / "scatter.csv", "residuals.csv": out_dir / "residuals.csv",
            "regression.png": save_figure(fig, out_dir / "regression.png")}
