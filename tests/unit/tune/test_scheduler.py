"""ASHA with TPE's random start capped at its first rung: which trials are random draws, and where they stop."""

from __future__ import annotations

import optuna
from ray.tune.experiment import Trial
from ray.tune.schedulers import TrialScheduler
from ray.tune.search.optuna import OptunaSearch

from medtune.config import ParamSpec
from medtune.tune.scheduler import StartupCappedASHA, random_trials, trial_number
from medtune.tune.space import SearchSpace


def test_random_trials_are_the_draws_before_tpe_has_its_start() -> None:
    assert random_trials(startup=5, told=0, replays=0) == range(0, 5)    # a cold sweep
    assert random_trials(startup=5, told=2, replays=2) == range(2, 3)    # replays first, then 1 draw
    assert not random_trials(startup=5, told=24, replays=3)              # told enough: TPE from the start


def test_trials_side_by_side_draw_more_at_random() -> None:
    # Two at a time: the sixth trial is created when four have finished, before TPE has its five.
    assert random_trials(startup=5, told=0, replays=0, concurrent=2) == range(0, 6)
    assert random_trials(startup=5, told=2, replays=2, concurrent=4) == range(2, 6)
    assert not random_trials(startup=5, told=5, replays=0, concurrent=4)  # TPE from the first draw


def _trial(created: int) -> Trial:
    """A stub trial tagged as Tune's search generator tags the `created`-th trial it makes (0-based)."""
    return Trial("__fake", stub=True, experiment_tag=f"{created + 1}_lr=0.001,batch_size=64")


def _report(scheduler: StartupCappedASHA, trial: Trial, steps: int, value: float) -> str:
    return scheduler.on_trial_result(None, trial, {"steps": steps, "auroc": value})


def test_random_trials_stop_at_the_cap_and_the_rest_run_on_where_asha_keeps_them() -> None:
    scheduler = StartupCappedASHA(capped=range(0, 2), cap=4, time_attr="steps", metric="auroc", mode="max",
                                  max_t=48, grace_period=4, reduction_factor=3)
    trials = [_trial(n) for n in range(3)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    first, second, chosen = trials
    # The first trial has nothing to compare with: plain ASHA would run it to max_t. Better than it, the
    # second would run on too.
    assert _report(scheduler, first, 4, 0.80) == TrialScheduler.STOP
    assert _report(scheduler, second, 2, 0.85) == TrialScheduler.CONTINUE     # before the rung
    assert _report(scheduler, second, 5, 0.90) == TrialScheduler.STOP
    # TPE's first proposal passes the rungs the random trials recorded and trains on.
    for steps, value in ((4, 0.95), (12, 0.96), (36, 0.97)):
        assert _report(scheduler, chosen, steps, value) == TrialScheduler.CONTINUE


def test_a_trial_keeps_its_position_whatever_order_it_comes_back_in() -> None:
    scheduler = StartupCappedASHA(capped=range(0, 1), cap=4, time_attr="steps", metric="auroc", mode="max",
                                  max_t=48, grace_period=4, reduction_factor=3)
    first, later = _trial(0), _trial(1)
    # Requeued after a worker failure, the first trial comes back after the later one.
    for trial in (later, first):
        scheduler.on_trial_add(None, trial)
    assert _report(scheduler, later, 4, 0.9) == TrialScheduler.CONTINUE
    assert _report(scheduler, first, 4, 0.9) == TrialScheduler.STOP


def test_a_trial_that_fails_before_tpe_has_its_start_makes_one_more_draw_random() -> None:
    scheduler = StartupCappedASHA(capped=range(0, 2), cap=4, startup_left=2, time_attr="steps", metric="auroc",
                                  mode="max", max_t=48, grace_period=4, reduction_factor=3)
    trials = [_trial(n) for n in range(5)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    scheduler.on_trial_error(None, trials[0])
    # TPE still waits for two finished trials, so the third was drawn at random too: it stops at the cap.
    assert _report(scheduler, trials[2], 4, 0.99) == TrialScheduler.STOP
    for trial in trials[1:3]:
        scheduler.on_trial_complete(None, trial, {"steps": 4, "auroc": 0.9})
    # TPE has its start: a failure now costs it nothing, and the fourth trial, its proposal, trains on.
    scheduler.on_trial_error(None, trials[4])
    assert _report(scheduler, trials[3], 4, 0.99) == TrialScheduler.CONTINUE


def test_optunas_start_does_not_count_a_trial_ray_reports_as_errored() -> None:
    """What the scheduler's failure rule rests on: Ray tells Optuna an errored trial as FAIL, with no value
    even when it had reported some, and TPE's start counts only COMPLETE and PRUNED trials."""
    storage = optuna.storages.InMemoryStorage()
    optuna.create_study(storage=storage, study_name="s", direction="maximize")
    space = SearchSpace((ParamSpec("lr", low=1e-4, high=1e-1, log=True),))
    searcher = OptunaSearch(space=space, metric="auroc", mode="max", storage=storage, study_name="s",
                            sampler=optuna.samplers.TPESampler(n_startup_trials=1, seed=0))
    searcher.suggest("a")
    searcher.on_trial_result("a", {"auroc": 0.9, "training_iteration": 1})
    searcher.on_trial_complete("a", error=True)
    (told,) = optuna.load_study(study_name="s", storage=storage).trials
    assert told.state == optuna.trial.TrialState.FAIL and told.value is None
    # TPE is still in its start: its next config is the second draw of a random sampler of the same seed.
    random = OptunaSearch(space=space, metric="auroc", mode="max", sampler=optuna.samplers.RandomSampler(seed=0))
    assert searcher.suggest("b") == [random.suggest(str(i)) for i in range(2)][1]


def test_trial_number_reads_tunes_counter_and_nothing_else() -> None:
    assert trial_number(_trial(0).experiment_tag) == 1
    assert trial_number("42_lr=0.001,batch_size=64") == 42
    assert trial_number("") is None                 # no tag
    assert trial_number("lr=0.001") is None         # no counter
