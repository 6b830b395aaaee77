"""Sweep report from a leaderboard: importance finds the parameter that drives the metric."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from medtune.config import ParamSpec
from medtune.tune.plots import write_sweep_plots

SPACE = (ParamSpec("lr", low=1e-4, high=1e-1, log=True), ParamSpec("dropout", low=0.0, high=0.5),
         ParamSpec("optimizer", choices=("adam", "sgd")))


def sweep(n: int = 24) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """A made-up sweep where only lr matters: the metric peaks at lr = 1e-2, dropout is noise."""
    rng = np.random.default_rng(0)
    rows, history = [], {}
    for i in range(n):
        config = {"lr": float(10 ** rng.uniform(-4, -1)), "dropout": float(rng.uniform(0, 0.5)),
                  "optimizer": str(rng.choice(["adam", "sgd"]))}
        value = 0.95 - 0.1 * (np.log10(config["lr"]) + 2) ** 2 + rng.normal(0, 0.002)
        trial = f"t{i:02d}"
        rows.append({"trial_id": trial, "best_val_auroc": value, "config": json.dumps(config)})
        history[trial] = pd.DataFrame({"epoch": [1, 2], "val_auroc": [value - 0.05, value],
                                       "timestamp": [1000 + i, 1001 + i], "trial_id": [trial, trial]})
    board = pd.DataFrame(rows).sort_values("best_val_auroc", ascending=False).reset_index(drop=True)
    return board, history


def test_report_files_and_importance(tmp_path: Path) -> None:
    board, history = sweep()
    files = write_sweep_plots(board, history, SPACE, "val_auroc", "max", tmp_path)
    assert {f.name for f in files} == {"history.png", "parallel.png", "importance.png", "curves.png",
                                        "importance.json"}
    assert all(f.stat().st_size > 1000 for f in files if f.suffix == ".png")
    importance = json.loads((tmp_path / "importance.json").read_text())
    assert max(importance, key=importance.get) == "lr"
    assert importance["lr"] > 0.5


def test_report_survives_failed_trials(tmp_path: Path) -> None:
    board, history = sweep(4)
    board.loc[0, "best_val_auroc"] = float("nan")  # an OOM trial
    write_sweep_plots(board, history, SPACE, "val_auroc", "max", tmp_path)
    assert (tmp_path / "history.png").is_file()
