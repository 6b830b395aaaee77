"""A sweep whose driver is killed mid-way resumes with Tuner.restore: finished trials are not re-run, an
unfinished one goes on from its checkpoint even when Ray had deleted the one its saved state names, every
trial keeps its learning curve even when its result file was left empty, a state file Ray left cut short is
restored from the killed driver's staging folder, the searcher is still Optuna, and the trial count equals
num_samples (ray issue 30861)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from tests._data import learnable_data
from tests.integration._proc import tool_env

from medtune.tracking.sweep_log import TRIAL_TAG

pytestmark = [pytest.mark.slow, pytest.mark.ray]
DRIVER = Path(__file__).with_name("_sweep_driver.py")


def write_data(workdir: Path) -> None:
    data = learnable_data(workdir / "store", 96, 48)
    np.savez(workdir / "data.npz", **{f"{name}_{part}": getattr(split, part)[:]
                                       for name, split in (("train", data.train), ("val", data.val))
                                       for part in ("x", "y")})


def finished_trials(sweep_dir: Path) -> dict[str, int]:
    """trial dir -> number of results written, for trials whose last result says done. Ray copies each
    result.json from its staging folder into the sweep folder again while the sweep runs, so one read can
    catch a file empty; callers keep what earlier reads saw."""
    done = {}
    for result in sweep_dir.glob("*/result.json"):
        lines = result.read_text().splitlines()
        if lines and json.loads(lines[-1]).get("done"):
            done[result.parent.name] = len(lines)
    return done


def trial_id(trial_dir: str) -> str:
    return trial_dir.split("_")[2]  # guarded_trial_<id>_<n>_<config>_<date>


def epochs_logged(client: MlflowClient, trial_runs: list) -> dict[str, int]:
    """trial id -> epochs MLflow holds for it, over all its runs: a trial run again would log them again.
    MLflow, not result.json: a driver killed while Ray copied a finished trial's file leaves it empty."""
    epochs: Counter[str] = Counter()
    for run in trial_runs:
        epochs[run.data.tags[TRIAL_TAG]] += len(client.get_metric_history(run.info.run_id, "steps"))
    return dict(epochs)


def started_trials(sweep_dir: Path, finished: dict[str, int]) -> list[Path]:
    """Trial folders with at least one checkpoint whose trial has not finished."""
    return [d for d in sweep_dir.glob("guarded_trial_*") if d.name not in finished and any(d.glob("checkpoint_*"))]


def replace_saved_checkpoints(trial_dir: Path) -> None:
    """Ray's race, made certain: it deletes older checkpoints as newer ones register but saves the sweep's
    state only every 2 s, so a killed driver's state can name a checkpoint that is gone. Only the newest is
    kept, under a name later than any the state can hold."""
    *older, newest = sorted(trial_dir.glob("checkpoint_*"))
    for checkpoint in older:
        shutil.rmtree(checkpoint)
    newest.rename(trial_dir / f"checkpoint_{int(newest.name.split('_')[1]) + 1:06d}")


def test_killed_driver_resumes_without_rerunning_finished_trials(tmp_path: Path) -> None:
    write_data(tmp_path)
    sweep_dir = tmp_path / "ray" / "sweep"
    env = tool_env()
    first = subprocess.Popen([sys.executable, str(DRIVER), str(tmp_path)], env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before: dict[str, int] = {}  # trial dir -> results, as read while the sweep ran
    try:
        deadline = time.monotonic() + 300
        while len(before) < 2 and time.monotonic() < deadline:
            assert first.poll() is None, "the sweep ended before it could be interrupted"
            before |= finished_trials(sweep_dir)
            time.sleep(0.5)
        for _ in range(6):  # 3 s: past one experiment-state save (every 2 s), with the third trial half-way
            before |= finished_trials(sweep_dir)
            time.sleep(0.5)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the driver and the Ray runtime it started
        first.wait()
    before |= finished_trials(sweep_dir)
    assert 2 <= len(before) < 4, before
    unfinished = started_trials(sweep_dir, before)
    assert unfinished, "no trial was running when the driver was killed"
    for trial_dir in unfinished:
        replace_saved_checkpoints(trial_dir)
    # Ray's other race, made certain: a driver killed while Ray copied a finished trial's result file leaves
    # it empty, and the resumed sweep has no learning curve for that trial from Ray.
    (sweep_dir / next(iter(before)) / "result.json").write_text("")
    # The same race on Ray's own state files: with one cut short Ray would restart the sweep from nothing.
    cut = next(sweep_dir.glob("search_gen_state-*.json"))
    cut.write_bytes(b"")

    second = subprocess.run([sys.executable, str(DRIVER), str(tmp_path)], env=env, capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming the unfinished sweep" in second.stdout
    assert f"{cut.name} was cut short" in second.stdout
    assert "TRIALS 4" in second.stdout
    assert "CURVES 4" in second.stdout, "a finished trial lost its learning curve with the driver"
    # The trial the saved state holds (not one started in its last 2 s) resumed from the later checkpoint.
    assert any(f"{d.name} resumes from its newer checkpoint_" in second.stdout for d in unfinished), second.stdout

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("resume")
    trials = client.search_runs([experiment.experiment_id], filter_string="tags.`medtune.kind` = 'trial'")
    epochs = epochs_logged(client, trials)
    for trial, results in before.items():
        assert epochs[trial_id(trial)] == results, f"{trial} was run again"

    parents = client.search_runs([experiment.experiment_id], filter_string="tags.`medtune.kind` = 'sweep'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    # A trial started in the last 2 s before the kill is not in Tune's saved state: the resumed sweep ran a
    # new one in its place and closed the old run as lost, so none is left RUNNING.
    kept = [r for r in trials if r.data.tags.get("medtune.stop_reason") != "lost_with_driver"]
    assert len(kept) == 4 and {r.info.status for r in kept} == {"FINISHED"}
    assert {r.info.status for r in trials if r not in kept} <= {"KILLED"} and len(trials) <= 5
    searcher_state = list(sweep_dir.glob("searcher-state-*.pkl"))
    assert searcher_state, "the restored sweep kept no searcher state"
    assert b"OptunaSearch" in searcher_state[0].read_bytes() or b"optuna" in searcher_state[0].read_bytes()
