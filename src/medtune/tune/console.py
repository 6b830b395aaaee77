"""The quiet console: one line per finished trial, the plan and the stage summary; Ray's tables with `-v`.

A sweep used to print ~400 lines of Ray trial tables and warnings around the one line a user needs. The
default is now a line per finished trial (its result, the best so far, an ETA) and `medtune tune -v`
(or MEDTUNE_VERBOSE=1) brings Ray's own progress tables back.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any

import optuna
from ray import tune

from medtune.config import Params, TrainCfg
from medtune.tune.callbacks import read_error
from medtune.tune.outputs import overridden_train_keys
from medtune.tune.plan import Plan
from medtune.tune.results import SweepResult, planned_epochs, stop_reason

WAITING_LOGGER = "ray.tune.execution.insufficient_resources_manager"  # Tune's "no trial fits" warning


def verbose_console(flag: bool = False) -> bool:
    """`-v` on the command line or MEDTUNE_VERBOSE=1 in the environment."""
    return flag or os.environ.get("MEDTUNE_VERBOSE", "") not in ("", "0")


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s"


class TrialLines(tune.Callback):
    """The quiet console: one line per finished trial with its result, the best so far and an ETA (from the
    time budget when one is set, else from the pace so far). Ray's own tables come back with `-v`."""

    def __init__(self, metric: str, mode: str, base: TrainCfg, num_samples: int, time_budget_s: float = 0.0,
                 write: Callable[[str], None] = print) -> None:
        self.metric, self.sign, self.base = metric, (1.0 if mode == "max" else -1.0), base
        self.num_samples, self.budget = num_samples, time_budget_s
        self.write, self.done, self.best, self.start = write, 0, None, time.monotonic()

    def setup(self, **info: Any) -> None:
        self.start = time.monotonic()

    def eta(self) -> str:
        elapsed = time.monotonic() - self.start
        left = self.num_samples - self.done
        pace = elapsed / self.done * left if self.done else float("nan")  # trials so far ran concurrently too
        if self.budget:
            pace = min(pace, self.budget - elapsed) if self.done else self.budget - elapsed
        return "done" if left <= 0 else ("?" if math.isnan(pace) else "~" + _clock(pace))

    def line(self, trial: Any, outcome: str) -> None:
        self.done += 1
        value = (trial.last_result or {}).get(f"best_{self.metric}")
        if isinstance(value, float) and not math.isnan(value) and (
                self.best is None or self.sign * value > self.sign * self.best):
            self.best = value
        shown = f"{self.metric} {value:.4f}" if isinstance(value, float) and not math.isnan(value) else "no result"
        best = f"{self.best:.4f}" if self.best is not None else "-"
        budget = f" of {_clock(self.budget)} budget" if self.budget else ""
        self.write(f"tune: trial {self.done}/{self.num_samples} {shown} ({outcome}); best {best}; "
                   f"{_clock(time.monotonic() - self.start)} elapsed{budget}, ETA {self.eta()}")

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        error = "OutOfMemoryError" if last.get("oom") else None
        reason = stop_reason(last.get("epoch", 0), planned_epochs(last, trial.config, self.base), error)
        self.line(trial, f"{reason} after {last.get('epoch', 0)} epochs, {last.get('steps', 0)} steps")

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = read_error(trial).strip().splitlines()
        self.line(trial, "error: " + (error[-1][:120] if error else "unknown"))


def stage_intro(params: Params, plan: Plan, pretrained: list[str], warm_note: str) -> str:
    """What the stage says before the first trial: searched keys, preset, plan (and why), pretrained, warm start."""
    lines = [f"search.space samples {', '.join(overridden_train_keys(params))}: their train: values are not used"]
    if params.search.preset:
        lines.append(f"preset {params.search.preset}: fills the search keys params.yaml leaves out")
    lines += [f"planned: {why}" for why in plan.why] + [f"pretrained {line}" for line in pretrained] + [warm_note]
    return "".join(f"tune: {line}\n" for line in lines)


def stage_summary(result: SweepResult, best: dict[str, Any]) -> str:
    """The stage's last line: trials by stop reason, the best trial, the MLflow parent run."""
    reasons = result.leaderboard["stop_reason"].value_counts().to_dict()
    return (f"tune: {len(result.leaderboard)} trials {reasons}; best {best['trial_id']} "
            f"{best['metric']}={best['value']:.4f}; MLflow parent run {result.parent_run_id}")


def quiet_logs(verbose: bool) -> None:
    """Keep Optuna, Ray and Lightning to what needs the user (the trial lines are the progress). Ray's
    new output engine prints its experiment box and paths even when told to be silent, so a quiet sweep
    uses the legacy reporter, which at verbosity 0 prints nothing; `-v` keeps the new engine's tables."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    os.environ["RAY_AIR_NEW_OUTPUT"] = "1" if verbose else "0"  # read by Tuner.fit in this driver process
    for name in ("ray", "ray.tune", "ray.train", "pytorch_lightning", "lightning", "lightning.pytorch"):
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)
    # Tune's only word when no trial fits the cluster's free resources (a remote cluster: the local one is
    # checked before the sweep starts): without it a sweep waiting for nodes that never come looks hung.
    logging.getLogger(WAITING_LOGGER).setLevel(logging.WARNING)
