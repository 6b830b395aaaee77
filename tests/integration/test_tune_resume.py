"""A sweep whose driver is killed mid-way resumes with Tuner.restore: finished trials are not re-run,
the searcher is still Optuna, and the trial count equals num_samples (ray issue 30861)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from tests._data import learnable_data
from tests.integration._proc import tool_env

pytestmark = [pytest.mark.slow, pytest.mark.ray]
DRIVER = Path(__file__).with_name("_sweep_driver.py")


def write_data(workdir: Path) -> None:
    data = learnable_data(workdir / "store", 96, 48)
    np.savez(workdir / "data.npz", **{f"{name}_{part}": getattr(split, part)[:]
                                       for name, split in (("train", data.train), ("val", data.val))
                                       for part in ("x", "y")})


def finished_trials(sweep_dir: Path) -> dict[str, int]:
    """trial dir -> number of results written, for trials whose last result says done."""
    done = {}
    for result in sweep_dir.glob("*/result.json"):
        lines = result.read_text().splitlines()
        if lines and json.loads(lines[-1]).get("done"):
            done[result.parent.name] = len(lines)
    return done


def test_killed_driver_resumes_without_rerunning_finished_trials(tmp_path: Path) -> None:
    write_data(tmp_path)
    sweep_dir = tmp_path / "ray" / "sweep"
    env = tool_env()
    first = subprocess.Popen([sys.executable, str(DRIVER), str(tmp_path)], env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while len(finished_trials(sweep_dir)) < 2 and time.monotonic() < deadline:
            assert first.poll() is None, "the sweep ended before it could be interrupted"
            time.sleep(0.5)
        time.sleep(3)  # past one experiment-state save (every 2 s)
    finally:
        os.killpg(first.pid, signal.SIGKILL)  # the driver and the Ray runtime it started
        first.wait()
    before = finished_trials(sweep_dir)
    assert 2 <= len(before) < 4, before

    second = subprocess.run([sys.executable, str(DRIVER), str(tmp_path)], env=env, capture_output=True,
                            text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "resuming the unfinished sweep" in second.stdout
    assert "TRIALS 4" in second.stdout

    after = finished_trials(sweep_dir)
    assert len(after) == 4
    for trial, results in before.items():
        assert after[trial] == results, f"{trial} was run again"

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns.db'}")
    experiment = client.get_experiment_by_name("resume")
    parents = client.search_runs([experiment.experiment_id], filter_string="tags.`medtune.kind` = 'sweep'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    trials = client.search_runs([experiment.experiment_id], filter_string="tags.`medtune.kind` = 'trial'")
    # A trial started in the last 2 s before the kill is not in Tune's saved state: the resumed sweep ran a
    # new one in its place and closed the old run as lost, so none is left RUNNING.
    kept = [r for r in trials if r.data.tags.get("medtune.stop_reason") != "lost_with_driver"]
    assert len(kept) == 4 and {r.info.status for r in kept} == {"FINISHED"}
    assert {r.info.status for r in trials if r not in kept} <= {"KILLED"} and len(trials) <= 5
    searcher_state = list(sweep_dir.glob("searcher-state-*.pkl"))
    assert searcher_state, "the restored sweep kept no searcher state"
    assert b"OptunaSearch" in searcher_state[0].read_bytes() or b"optuna" in searcher_state[0].read_bytes()
