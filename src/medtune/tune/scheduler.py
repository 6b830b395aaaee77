"""ASHA that stops the trials TPE samples at random at its first rung.

Asynchronous ASHA cannot stop a trial it has nothing to compare with, so a sweep's first trials, random
configs drawn before TPE has a model, ran to max_t: on bench/hpo.py's cohort the first two or three cost
24-36 epochs before TPE proposed anything. A random trial explores; at the first rung it has told TPE and
ASHA what it can (a value there, a rung entry later trials are judged against), and the first trial to
train in full is one TPE chose (Hyperband's view: most configs are seen at a small budget). The README
gives what bench/hpo.py measured, and what the first rung did against the second.
"""

from __future__ import annotations

from typing import Any

from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler, TrialScheduler


def random_trials(startup: int, told: int, replays: int, concurrent: int = 1) -> range:
    """The positions (in the order Tune creates trials) of the trials Optuna samples at random: it draws at
    random until `startup` trials have finished, and warm-start trials it was told count; replays are
    queued configs, not draws. With `concurrent` trials at once Tune creates trial p when p - concurrent + 1
    have finished (its concurrency limiter frees a slot as it tells Optuna a result), so the first
    concurrent - 1 draws past `startup` are random too."""
    if told >= startup:
        return range(replays, replays)
    return range(replays, max(replays, startup - told + concurrent - 1))


def trial_number(experiment_tag: str) -> int | None:
    """Which trial of the sweep Tune created this one as (1, 2, ...): its trial generators start each
    experiment tag with their counter (`3_lr=0.001,...`), and the tag is part of the trial's saved state, so
    a retried, requeued or restored trial keeps it, where the order trials reach the scheduler does not (Tune
    moves a requeued trial to the end of its list). None for a tag without the counter."""
    head = experiment_tag.split("_", 1)[0]
    return int(head) if head.isdigit() else None


class StartupCappedASHA(ASHAScheduler):
    """ASHAScheduler whose trials at positions `capped` stop once they reach `cap` of its time attribute.

    `startup_left` is how many more trials Optuna waits for before TPE proposes. A trial that errors while it
    waits is told to Optuna as FAIL, which its start does not count, so one more draw is random: `capped`
    grows by one. The count lives in this process only; a resumed sweep starts it again from the plan, where
    a failure could cap one TPE proposal at the first rung (a short trial, not a lost one)."""

    def __init__(self, *, capped: range, cap: int, startup_left: int = 0, **asha: Any) -> None:
        super().__init__(**asha)
        self.capped, self.cap, self.startup_left = capped, cap, startup_left

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        super().on_trial_complete(tune_controller, trial, result)
        self.startup_left -= 1  # Optuna is told COMPLETE, or PRUNED without a value: both count

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_remove(tune_controller, trial)
        self.startup_left -= 1  # stopped before it ran (a time budget): PRUNED

    def on_trial_error(self, tune_controller: Any, trial: Trial) -> None:
        super().on_trial_error(tune_controller, trial)
        if self.startup_left > 0:
            self.capped = range(self.capped.start, self.capped.stop + 1)

    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        action = super().on_trial_result(tune_controller, trial, result)  # records the rung first
        number = trial_number(trial.experiment_tag)
        if self.cap and number is not None and number - 1 in self.capped and result[self._time_attr] >= self.cap:
            return TrialScheduler.STOP
        return action
