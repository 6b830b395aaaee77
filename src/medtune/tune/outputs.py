"""What a finished sweep leaves for the later stages: leaderboard, best trial, summary, checkpoint, plots."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

from medtune import paths
from medtune.config import Params, SearchCfg, TrainCfg
from medtune.jsonio import atomic_path, write_json, write_table
from medtune.tune.plots import write_sweep_plots
from medtune.tune.results import SweepResult, ranked_trials


def write_sweep_outputs(result: SweepResult, base: TrainCfg, search: SearchCfg,
                        split_hash: str) -> tuple[dict, dict, list[Path]]:
    """Write reports/tune/*, models/best/model.pt and the next best trials' checkpoints; returns (best,
    summary, report files). The best trial's `train` config is what it trained with, so promote's fold
    refits repeat it: `base` holds the planned train defaults (batch cap, epochs as ASHA's budget) and its
    epochs are those it ran (raised to the planned minimum steps, or cut by ASHA)."""
    board = result.leaderboard
    paths.TUNE_REPORTS.mkdir(parents=True, exist_ok=True)
    write_table(board, paths.LEADERBOARD)
    with atomic_path(paths.BEST_MODEL) as tmp:
        shutil.copyfile(result.best["checkpoint"], tmp)
    best: dict[str, Any] = {**result.best, "checkpoint": str(paths.BEST_MODEL), "sweep_run_id": result.parent_run_id,
                            "split_hash": split_hash, "top": keep_top_trials(result, search),
                            "train": {**dataclasses.asdict(base), **result.best["config"],
                                      "epochs": result.best["epochs_run"]}}
    write_json(paths.BEST, best)
    reasons = board["stop_reason"].value_counts().to_dict()
    summary = {f"best_{best['metric']}": best["value"], "trials": len(board),
               **{f"trials_{k}": int(v) for k, v in reasons.items()}}
    write_json(paths.TUNE_REPORTS / "summary.json", summary)
    plots = write_sweep_plots(board, result.history, search.space, search.metric, search.mode, paths.TUNE_REPORTS)
    return best, summary, [paths.LEADERBOARD, paths.BEST, *plots]


def keep_top_trials(result: SweepResult, search: SearchCfg) -> list[dict[str, Any]]:
    """Copy the checkpoints of the `search.ensemble_top_k` best trials after the best into models/best/top
    (`<rank>.pt`, outside the sweep folder, so promote's top-k ensemble survives a new sweep and `dvc
    push`); returns the top k, the best first, with the checkpoint each is kept as."""
    shutil.rmtree(paths.TOP_MODELS, ignore_errors=True)
    paths.TOP_MODELS.mkdir(parents=True)
    top = ranked_trials(result.leaderboard, search.mode)[: search.ensemble_top_k]
    kept = [{"trial_id": top[0]["trial_id"], "value": top[0]["value"], "checkpoint": str(paths.BEST_MODEL)}]
    for rank, trial in enumerate(top[1:], start=2):
        shutil.copyfile(trial["checkpoint"], paths.TOP_MODELS / f"{rank}.pt")
        kept.append({"trial_id": trial["trial_id"], "value": trial["value"],
                     "checkpoint": str(paths.TOP_MODELS / f"{rank}.pt")})
    return kept


def overridden_train_keys(params: Params) -> list[str]:
    """train: keys whose params.yaml value no trial uses, because search.space samples them."""
    return sorted(spec.name for spec in params.search.space)
