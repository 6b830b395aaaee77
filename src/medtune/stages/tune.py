"""Stage `tune`: the sweep on train/val only, tracked in MLflow, best checkpoint kept for promote."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import optuna

from medtune import paths
from medtune.config import Params
from medtune.data.datamodule import load_train_data
from medtune.data.split import load_valid_splits, split_hash
from medtune.jsonio import write_json
from medtune.tracking.lineage import lineage_tags, params_hash
from medtune.tracking.pretrained import load_init_state
from medtune.tracking.sweep_log import SweepLogger
from medtune.tune.report import write_report
from medtune.tune.runner import Trainable, run_sweep, saved_parent_run


def run(params: Params, resume: bool = True) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # Tune's trial table is the progress display
    splits = load_valid_splits(paths.SPLITS, paths.PROCESSED)  # a hand-edited file is checked here
    shash = split_hash(splits)
    data = load_train_data(paths.PROCESSED, splits)  # train + val only: test never enters a sweep
    searched = {"train": dataclasses.asdict(params.train), "search": dataclasses.asdict(params.search)}
    tags = lineage_tags(shash, searched)
    # One sweep folder per (params, data, split): re-running after an interruption resumes it.
    inputs = {k: v for k, v in tags.items() if k != "medtune.git_commit"}
    sweep_dir = Path(params.search.storage) / f"sweep-{params_hash(inputs)}"
    logger = SweepLogger(params.tracking_uri, params.base.experiment, params.base.artifact_root,
                         parent_run_id=saved_parent_run(sweep_dir) if resume else None,
                         tags=tags, params=_flat(searched))
    init = load_init_state(params.train.init_from, params.tracking_uri) if params.train.init_from else None
    trainable = Trainable(data, params.train, params.search, init_state=init)
    try:
        result = run_sweep(trainable, sweep_dir, logger, resume=resume)
    except BaseException:
        logger.client.set_terminated(logger.parent_run_id, status="KILLED")
        raise
    board, best = result.leaderboard, result.best
    paths.TUNE_REPORTS.mkdir(parents=True, exist_ok=True)
    board.to_csv(paths.LEADERBOARD, index=False)
    paths.BEST_MODEL.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best["checkpoint"], paths.BEST_MODEL)
    best = {**best, "checkpoint": str(paths.BEST_MODEL), "sweep_run_id": result.parent_run_id,
            "split_hash": shash, "train": {**dataclasses.asdict(params.train), **best["config"]}}
    write_json(paths.BEST, best)
    reasons = board["stop_reason"].value_counts().to_dict()
    summary = {f"best_{best['metric']}": best["value"], "trials": len(board),
               **{f"trials_{k}": int(v) for k, v in reasons.items()}}
    write_json(paths.TUNE_REPORTS / "summary.json", summary)
    plots = write_report(board, result.history, params.search.space, params.search.metric,
                         params.search.mode, paths.TUNE_REPORTS)
    logger.finish(summary, [paths.LEADERBOARD, paths.BEST, *plots], {"medtune.best_trial": best["trial_id"]})
    print(f"tune: {len(board)} trials {reasons}; best {best['trial_id']} "
          f"{best['metric']}={best['value']:.4f}; MLflow parent run {result.parent_run_id}")


def _flat(nested: dict) -> dict:
    out = {}
    for section, values in nested.items():
        for key, value in values.items():
            if key == "space":
                for spec in value:
                    out[f"space.{spec['name']}"] = spec["choices"] or [spec["low"], spec["high"], spec["log"]]
            else:
                out[f"{section}.{key}"] = value
    return out
