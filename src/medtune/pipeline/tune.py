"""Stage `tune`: the sweep on train/val only, tracked in MLflow, best checkpoint kept for promote."""

from __future__ import annotations

import dataclasses

from medtune import paths
from medtune.config import Params
from medtune.data.datamodule import load_train_data
from medtune.data.split import load_valid_splits, split_hash
from medtune.tracking.lineage import lineage_tags, sweep_folder
from medtune.tracking.pretrained import resolve_pretrained
from medtune.tracking.runs import flatten_params
from medtune.tracking.sweep_log import SweepLogger
from medtune.tune.console import quiet_logs, stage_intro, stage_summary
from medtune.tune.outputs import write_sweep_outputs
from medtune.tune.runner import Trainable, connect, run_sweep, saved_parent_run
from medtune.tune.warm import warm_points


def run(params: Params, resume: bool = True, verbose: bool = False) -> None:
    quiet_logs(verbose)  # one line per trial; -v brings Ray's tables back
    connect(params.search.address, quiet=not verbose)  # first: its workers import torch while data loads
    splits = load_valid_splits(paths.SPLITS, paths.PROCESSED)  # a hand-edited file is checked here
    shash = split_hash(splits)
    data = load_train_data(paths.PROCESSED, splits)  # train + val only: test never enters a sweep
    searched = {"train": dataclasses.asdict(params.train), "search": dataclasses.asdict(params.search)}
    tags = lineage_tags(shash, searched)
    sweep_dir = sweep_folder(params.search.storage, tags)  # same inputs: an interrupted sweep resumes
    logger = SweepLogger(params.tracking_uri, params.base.experiment, params.base.artifact_root,
                         parent_run_id=saved_parent_run(sweep_dir) if resume else None,
                         tags=tags, params=flatten_params(searched))
    states, loads = resolve_pretrained(params.train, params.search.space, data.channels, data.task, params.tracking_uri)
    trainable = Trainable(data, params.train, params.search, init_states=states)  # resolves `auto` and the plan
    trainable.warm = warm_points(logger, trainable.search, trainable.base, tags)
    print(stage_intro(params, trainable.plan, loads, trainable.warm.note), end="")
    with logger.killed_on_error():
        result = run_sweep(trainable, sweep_dir, logger, resume=resume, verbose=verbose)
    best, summary, reports = write_sweep_outputs(result, trainable.base, trainable.search, shash)
    logger.finish(summary, reports, {"medtune.best_trial": best["trial_id"]})
    print(stage_summary(result, best))
