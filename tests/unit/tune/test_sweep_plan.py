"""A planned sweep on a tiny cohort (60 training images) through real Ray: every trial ASHA lets finish gets at
least the planned optimizer steps, none is cut before the grace period, and the console is one line per trial."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests._data import learnable_data

from medtune.config import ParamSpec, SearchCfg, TrainCfg
from medtune.tune.runner import Trainable, run_sweep

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_tiny_cohort_trials_get_the_planned_steps_and_the_console_stays_short(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    data = learnable_data(tmp_path, 60, 30)
    base = TrainCfg(batch_size=64, epochs=2, depth=2, width=8, augment=0.0, seed=3)
    search = SearchCfg(num_samples=3, max_concurrent_trials=2,  # plan keys left at auto
                       space=(ParamSpec("lr", low=1e-3, high=3e-2, log=True),
                              ParamSpec("batch_size", choices=(32, 64, 128)), ParamSpec("epochs", low=1, high=2)))
    trainable = Trainable(data, base, search)
    plan = trainable.plan
    assert plan.batch_cap == 15 and plan.min_steps == 30 and plan.grace_steps == 4  # one epoch: ASHA can cut
    result = run_sweep(trainable, tmp_path / "ray" / "sweep")

    board = result.leaderboard
    assert len(board) == 3 and set(board["param_batch_size"]) == {15}
    shown = board[["steps", "epochs_run", "stop_reason"]]
    finished = board[board["stop_reason"] != "asha_stopped"]
    assert len(finished) >= 1 and (board["steps"] >= plan.grace_steps).all(), shown  # the first never cut
    assert (finished["steps"] >= plan.min_steps).all(), shown
    assert (finished["epochs_run"] >= 8).all()  # 1-2 epochs of 4 steps, planned for 2, raised to 30 steps
    out = capfd.readouterr()
    printed = [line for line in (out.out + out.err).splitlines() if line.strip()]
    trial_lines = [line for line in printed if line.startswith("tune: trial ")]
    assert len(trial_lines) == 3 and trial_lines[-1].startswith("tune: trial 3/3") and "best" in trial_lines[-1]
    assert len(printed) < 20, "\n".join(printed)
