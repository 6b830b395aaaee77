"""Sweep report: optimisation history, parallel coordinates, parameter importance, learning curves.

Plain matplotlib Figures (no pyplot state) from the leaderboard and per-trial histories, so the same
report comes out of a local sweep, a restored one, or a cluster run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
from matplotlib.figure import Figure

from medtune.config import ParamSpec
from medtune.jsonio import atomic_path, write_json
from medtune.tune.space import distribution


def completed_study(board: pd.DataFrame, space: tuple[ParamSpec, ...], metric_col: str,
                    mode: str) -> optuna.Study:
    """An Optuna study holding the sweep's finished trials, for Optuna's importance evaluators."""
    study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    specs = {s.name: s for s in space}
    for _, row in board.iterrows():
        value = row[metric_col]
        if value is None or not math.isfinite(float(value)):
            continue
        config = json.loads(row["config"])
        params = {k: v for k, v in config.items() if k in specs}
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions={k: distribution(specs[k]) for k in params}, value=float(value)))
    return study


def param_importance(study: optuna.Study) -> dict[str, float]:
    """fANOVA importance of each searched parameter; empty when too few trials differ to tell."""
    if len(study.trials) < 3:
        return {}
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        return {k: float(v) for k, v in optuna.importance.get_param_importances(study, evaluator=evaluator).items()}
    except (RuntimeError, ValueError):
        return {}


def _save(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    return path


def plot_history(board: pd.DataFrame, metric_col: str, mode: str, out: Path) -> Path:
    """Each trial's best metric in launch order, with the running best."""
    ordered = board.sort_values("started")
    values = ordered[metric_col].astype(float).to_numpy()
    running = (np.fmax.accumulate if mode == "max" else np.fmin.accumulate)(np.nan_to_num(
        values, nan=-np.inf if mode == "max" else np.inf))
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    ax.scatter(range(1, len(values) + 1), values, label="trial")
    ax.step(range(1, len(values) + 1), running, where="post", color="C1", label="best so far")
    ax.set(xlabel="trial (launch order)", ylabel=metric_col, title="Optimisation history")
    ax.legend()
    return _save(fig, out)


def plot_parallel(board: pd.DataFrame, space: tuple[ParamSpec, ...], metric_col: str, out: Path) -> Path:
    """Parallel coordinates: every parameter scaled to [0, 1], one line per trial, coloured by metric."""
    fig = Figure(figsize=(max(6, len(space) * 0.9), 4))
    ax = fig.add_subplot()
    values = board[metric_col].astype(float)
    lo, hi = np.nanmin(values), np.nanmax(values)
    for _, row in board.iterrows():
        config = json.loads(row["config"])
        ys = [_scaled(spec, config.get(spec.name)) for spec in space]
        shade = 0.5 if not math.isfinite(row[metric_col]) or hi == lo else (row[metric_col] - lo) / (hi - lo)
        ax.plot(range(len(space)), ys, color=_viridis(shade), alpha=0.8)
    ax.set_xticks(range(len(space)), [s.name for s in space], rotation=30, ha="right")
    ax.set(ylabel="scaled value", title=f"Parallel coordinates (yellow = high {metric_col})")
    return _save(fig, out)


def _viridis(x: float) -> tuple[float, float, float, float]:
    from matplotlib import colormaps
    return colormaps["viridis"](float(x))


def _scaled(spec: ParamSpec, value: Any) -> float:
    if value is None:
        return float("nan")  # a conditional parameter this trial did not use
    if spec.choices is not None:
        return spec.choices.index(value) / max(len(spec.choices) - 1, 1)
    low, high, v = float(spec.low), float(spec.high), float(value)
    if spec.log:
        low, high, v = math.log(low), math.log(high), math.log(v)
    return (v - low) / (high - low)


def plot_importance(importance: dict[str, float], out: Path) -> Path:
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    if importance:
        names = list(importance)[::-1]
        ax.barh(names, [importance[n] for n in names])
    else:
        ax.text(0.5, 0.5, "too few finished trials to estimate", ha="center", va="center")
    ax.set(xlabel="fANOVA importance", title="Hyperparameter importance")
    return _save(fig, out)


def plot_curves(board: pd.DataFrame, history: dict[str, pd.DataFrame], metric: str, out: Path,
                top: int = 5) -> Path:
    """Per-epoch validation metric of the top trials: did they plateau, or stop too early?"""
    fig = Figure(figsize=(6, 4))
    ax = fig.add_subplot()
    for trial_id in board["trial_id"].head(top):
        frame = history.get(trial_id)
        if frame is not None and metric in frame:
            ax.plot(frame["epoch"], frame[metric], marker="o", label=trial_id)
    ax.set(xlabel="epoch", ylabel=metric, title=f"Learning curves, top {top}")
    ax.legend(fontsize=7)
    return _save(fig, out)


def write_sweep_plots(board: pd.DataFrame, history: dict[str, pd.DataFrame], space: tuple[ParamSpec, ...],
                 metric: str, mode: str, out_dir: Path) -> list[Path]:
    """All sweep plots plus importance.json; returns the files written (logged to the parent run)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metric_col = f"best_{metric}"
    board = board.assign(started=[_started(history.get(t)) for t in board["trial_id"]])
    importance = param_importance(completed_study(board, space, metric_col, mode))
    write_json(out_dir / "importance.json", importance)
    return [plot_history(board, metric_col, mode, out_dir / "history.png"),
            plot_parallel(board, space, metric_col, out_dir / "parallel.png"),
            plot_importance(importance, out_dir / "importance.png"),
            plot_curves(board, history, metric, out_dir / "curves.png"),
            out_dir / "importance.json"]


def _started(frame: pd.DataFrame | None) -> float:
    if frame is None or "timestamp" not in frame:
        return float("inf")
    return float(frame["timestamp"].min())
