"""A finished sweep as tables: one leaderboard row per trial, per-epoch histories, the best trial."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from ray import tune

from medtune.config import TrainCfg
from medtune.errors import MedtuneError
from medtune.tune.restore import CHECKPOINT_FILE
from medtune.tune.scheduler import trial_number


@dataclass
class SweepResult:
    leaderboard: pd.DataFrame
    best: dict[str, Any]          # trial_id, config, value, checkpoint (path to model.pt)
    parent_run_id: str | None
    sweep_dir: Path
    history: dict[str, pd.DataFrame]   # trial_id -> per-epoch metrics (learning curves)


def stop_reason(epochs_run: int, epochs_planned: int, error: str | None) -> str:
    """Why a trial ended: completed, asha_stopped, oom or error (no_result: stopped before reporting; in
    MLflow also lost_with_driver: `SweepLogger.close_lost`, at the end of the sweep)."""
    if error:
        return "oom" if "OutOfMemoryError" in error or "out of memory" in error else "error"
    return "completed" if epochs_run >= epochs_planned else "asha_stopped"


def planned_epochs(last: dict[str, Any], config: dict[str, Any], base: TrainCfg) -> int:
    """The epochs a trial was to run: what it reported (raised to the planned minimum steps), else its config."""
    return int(last.get("planned_epochs") or config.get("epochs", base.epochs))


def experiment_tag(last: dict[str, Any], trial_dir: str) -> str:
    """Tune's experiment tag, which every report carries; a trial that crashed before its first report has it
    only in its folder's name, `<trainable>_<trial id>_<tag>_<date>`."""
    if "experiment_tag" in last:
        return last["experiment_tag"]
    return Path(trial_dir).name.partition(f"_{last.get('trial_id')}_")[2]


def leaderboard(grid: tune.ResultGrid, base: TrainCfg, metric: str, mode: str) -> pd.DataFrame:
    """One row per trial, best first: metric, stop reason, epochs and steps run, checkpoint and its config."""
    rows = []
    for result in grid:
        # A trial stopped (time budget, interrupted sweep) before its first report has no metrics or config.
        last, config = result.metrics or {}, result.config or {}
        error = str(result.error) if result.error else None
        if last.get("oom"):
            error = f"OutOfMemoryError: {last.get('error')}"
        best_ckpt = result.get_best_checkpoint(metric, mode) if result.best_checkpoints else None
        ckpt = best_ckpt.path if best_ckpt else None
        rows.append({
            "trial_id": last.get("trial_id") or Path(result.path).name,
            "trial_number": trial_number(experiment_tag(last, result.path)),  # the order Tune created them in
            f"best_{metric}": last.get(f"best_{metric}"),
            "stop_reason": ("no_result" if not last else
                            stop_reason(last.get("epoch", 0), planned_epochs(last, config, base), error)),
            "epochs_run": last.get("epoch", 0),
            "steps": last.get("steps", 0),
            "seconds": last.get("time_total_s"),
            "node_id": last.get("node_id"),
            "checkpoint": str(Path(ckpt) / CHECKPOINT_FILE) if ckpt else None,
            "config": json.dumps(config, sort_keys=True),
            **{f"param_{k}": v for k, v in sorted(config.items())},
        })
    board = pd.DataFrame(rows)
    return board.sort_values(f"best_{metric}", ascending=(mode == "min"),
                             na_position="last").reset_index(drop=True)


def histories(grid: tune.ResultGrid) -> dict[str, pd.DataFrame]:
    """Per-epoch metrics of every trial, for learning curves."""
    out = {}
    for result in grid:
        frame = result.metrics_dataframe
        if frame is not None and not frame.empty and "trial_id" in frame:
            out[str(frame["trial_id"].iloc[0])] = frame
    return out


def ranked_trials(board: pd.DataFrame, mode: str) -> list[dict[str, Any]]:
    """Every trial with a metric and a checkpoint, best first; raises when there is none, saying whether
    the trials failed or the sweep ended (its time budget) before any of them reported an epoch."""
    metric_col = next(c for c in board.columns if c.startswith("best_"))
    usable = board.dropna(subset=[metric_col, "checkpoint"])
    if usable.empty and len(board) and board["stop_reason"].eq("no_result").all():
        raise MedtuneError("tune: the sweep ended before any trial reported an epoch: raise "
                           "search.time_budget_s (it counts Ray's start-up too) or leave it 0 for no limit")
    if usable.empty:
        raise MedtuneError("tune: every trial failed; see reports/tune/leaderboard.csv for the reasons")
    ordered = usable.sort_values(metric_col, ascending=(mode == "min"), kind="stable")
    return [{"trial_id": row["trial_id"], "metric": metric_col.removeprefix("best_"),
             "value": float(row[metric_col]), "config": json.loads(row["config"]),
             "checkpoint": row["checkpoint"], "epochs_run": int(row["epochs_run"])}
            for _, row in ordered.iterrows()]


def best_trial(board: pd.DataFrame, mode: str) -> dict[str, Any]:
    """The best trial with a checkpoint; raises if there is none (`ranked_trials`)."""
    return ranked_trials(board, mode)[0]
