"""Stage `tune`: the sweep on train/val only, tracked in MLflow, best checkpoint kept for promote."""

from __future__ import annotations

import dataclasses

import optuna

from medtune import paths
from medtune.config import Params
from medtune.data.datamodule import load_train_data
from medtune.data.split import load_valid_splits, split_hash
from medtune.tracking.lineage import lineage_tags, sweep_folder
from medtune.tracking.pretrained import resolve_pretrained
from medtune.tracking.runs import flatten_params
from medtune.tracking.sweep_log import SweepLogger
from medtune.tune.outputs import overridden_train_keys, write_sweep_outputs
from medtune.tune.runner import Trainable, run_sweep, saved_parent_run


def run(params: Params, resume: bool = True) -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # Tune's trial table is the progress display
    splits = load_valid_splits(paths.SPLITS, paths.PROCESSED)  # a hand-edited file is checked here
    shash = split_hash(splits)
    data = load_train_data(paths.PROCESSED, splits)  # train + val only: test never enters a sweep
    searched = {"train": dataclasses.asdict(params.train), "search": dataclasses.asdict(params.search)}
    tags = lineage_tags(shash, searched)
    sweep_dir = sweep_folder(params.search.storage, tags)  # same inputs: an interrupted sweep resumes
    logger = SweepLogger(params.tracking_uri, params.base.experiment, params.base.artifact_root,
                         parent_run_id=saved_parent_run(sweep_dir) if resume else None,
                         tags=tags, params=flatten_params(searched))
    print(f"tune: search.space samples {', '.join(overridden_train_keys(params))}: their train: values are not used")
    states, loads = resolve_pretrained(params.train, params.search.space, data.channels, data.task, params.tracking_uri)
    print("".join(f"tune: pretrained {line}\n" for line in loads), end="")
    trainable = Trainable(data, params.train, params.search, init_states=states)  # resolves `auto` metric/mode
    with logger.killed_on_error():
        result = run_sweep(trainable, sweep_dir, logger, resume=resume)
    best, summary, reports = write_sweep_outputs(result, params, trainable.search, shash)
    logger.finish(summary, reports, {"medtune.best_trial": best["trial_id"]})
    reasons = result.leaderboard["stop_reason"].value_counts().to_dict()
    print(f"tune: {len(result.leaderboard)} trials {reasons}; best {best['trial_id']} "
          f"{best['metric']}={best['value']:.4f}; MLflow parent run {result.parent_run_id}")
