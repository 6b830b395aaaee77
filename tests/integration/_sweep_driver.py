"""A sweep driver run as its own process by test_tune_resume.py, so the test can kill it (SIGKILL)
mid-sweep and start it again: `python _sweep_driver.py WORKDIR`."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from medtune.config import ParamSpec, SearchCfg, TrainCfg
from medtune.data.datamodule import SplitArrays, TrainData
from medtune.data.store import write_images
from medtune.task import Task
from medtune.tracking.sweep_log import SweepLogger
from medtune.tune.runner import Trainable, run_sweep, saved_parent_run

NUM_SAMPLES = 4


def load(workdir: Path) -> TrainData:
    arrays = np.load(workdir / "data.npz")
    ids = {name: [f"{name}{i}" for i in range(len(arrays[f"{name}_y"]))] for name in ("train", "val")}
    split = {name: SplitArrays(write_images(workdir / f"{name}.npy", np.clip(arrays[f"{name}_x"], 0, 1)),
                               arrays[f"{name}_y"], ids[name], ids[name])
             for name in ("train", "val")}
    return TrainData(split["train"], split["val"], Task("binary", ("a", "b")))


def main(workdir: Path) -> None:
    # Trials long enough (several seconds each, once Ray reuses the actor) that the test can kill the
    # driver with some trials finished and some not.
    base = TrainCfg(batch_size=16, epochs=100, depth=2, width=8, augment=0.0, seed=11)
    search = SearchCfg(num_samples=NUM_SAMPLES, max_concurrent_trials=1, grace_period=10_000, min_steps=0,
                       space=(ParamSpec("lr", low=1e-3, high=3e-2, log=True),))
    sweep_dir = workdir / "ray" / "sweep"
    logger = SweepLogger(f"sqlite:///{workdir / 'mlruns.db'}", "resume", str(workdir / "art"),
                         parent_run_id=saved_parent_run(sweep_dir))
    result = run_sweep(Trainable(load(workdir), base, search), sweep_dir, logger, resume=True)
    logger.finish({"trials": len(result.leaderboard)}, [], {})
    print("TRIALS", len(result.leaderboard))
    print("CURVES", sum(trial in result.history for trial in result.leaderboard["trial_id"]))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
