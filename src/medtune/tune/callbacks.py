"""Driver-side Tune callback: trial events into MLflow, whose one writer is the driver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ray import tune

from medtune.config import TrainCfg
from medtune.tracking.sweep_log import SweepLogger, trial_params
from medtune.tune.results import planned_epochs, stop_reason


class MlflowDriverCallback(tune.Callback):
    """Forwards trial events to SweepLogger on the driver (MLflow's one writer)."""

    def __init__(self, logger: SweepLogger, base: TrainCfg) -> None:
        self.logger, self.base = logger, base

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the run config into the experiment state; a live MLflow client is not state.
        return {"logger": None, "base": self.base}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.logger.trial_started(trial.trial_id, trial_params(self.base, trial.config))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if trial.trial_id not in self.logger.children:  # restored trial: reopen its run
            self.on_trial_start(iteration, trials, trial)
        keep = {k: v for k, v in result.items() if k.startswith(("val_", "train_", "best_")) or k == "steps"}
        self.logger.trial_result(trial.trial_id, keep, step=int(result.get("epoch", 0)))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        error = "OutOfMemoryError: " + str(last.get("error")) if last.get("oom") else None
        reason = stop_reason(last.get("epoch", 0), planned_epochs(last, trial.config, self.base), error)
        summary = {"epochs_run": last.get("epoch", 0), "steps": last.get("steps", 0),
                   "node_id": last.get("node_id", "")}
        self.logger.trial_ended(trial.trial_id, "FAILED" if error else "FINISHED", reason,
                                {**summary, **({"error": error} if error else {})})

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.logger.close_lost({trial.trial_id for trial in trials})

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = read_error(trial)
        self.logger.trial_ended(trial.trial_id, "FAILED", stop_reason(0, 1, error),
                                {"error": error.splitlines()[-1] if error else "unknown"})


def read_error(trial: Any) -> str:
    """The text of a failed trial's error file ('' when there is none)."""
    path = getattr(trial, "error_file", None) or getattr(trial, "pickled_error_file", None)
    try:
        return Path(path).read_text(errors="replace") if path and str(path).endswith(".txt") else ""
    except OSError:
        return ""
