"""The sweep plan sized from the cohort: batch cap, minimum steps, ASHA grace in steps, TPE start."""

from __future__ import annotations

from medtune.config import ParamSpec, SearchCfg, TrainCfg
from medtune.tune.plan import MIN_STEPS, plan_sweep, startup_trials, steps_per_epoch, trial_epochs

SPACE = (ParamSpec("batch_size", choices=(32, 64, 128)), ParamSpec("epochs", low=2, high=6))


def test_steps_per_epoch_matches_the_loader() -> None:
    assert steps_per_epoch(66, 16) == 5          # 4 full batches + one of 2
    assert steps_per_epoch(65, 16) == 4          # a last batch of 1 is dropped
    assert steps_per_epoch(10, 64) == 1
    assert trial_epochs(2, 16, 66, 30) == 6      # 2 epochs = 10 steps; 6 epochs = 30
    assert trial_epochs(8, 16, 66, 30) == 8      # already enough


def test_a_small_cohort_gets_a_batch_cap_minimum_steps_and_rungs_to_cut_at() -> None:
    base, search, plan = plan_sweep(TrainCfg(batch_size=64), SearchCfg(num_samples=8, space=SPACE), n_train=66)
    assert plan.batch_cap == 16 and base.batch_size == 16
    assert next(s for s in search.space if s.name == "batch_size").choices == (16,)
    assert plan.min_steps == MIN_STEPS and plan.max_steps >= plan.min_steps  # a survivor trains >= min steps
    # ASHA may cut before min_steps (at one epoch, 5 steps), or with 66 images it would have no rung to cut at.
    assert plan.grace_steps == steps_per_epoch(66, 16) < plan.min_steps
    assert any("because 66 training images" in why for why in plan.why)


def test_a_large_cohort_keeps_its_batches_and_asha_has_rungs() -> None:
    space = (ParamSpec("batch_size", choices=(32, 64, 128)), ParamSpec("epochs", low=2, high=12))
    base, search, plan = plan_sweep(TrainCfg(batch_size=64), SearchCfg(num_samples=32, space=space), n_train=4708)
    assert search.space == space[:1] and base.batch_size == 64
    assert plan.max_steps == 12 * steps_per_epoch(4708, 32)
    assert plan.grace_steps * search.reduction_factor ** 2 <= plan.max_steps  # two rungs to cut at
    assert plan.grace_steps % steps_per_epoch(4708, 128) == 0                  # on a report of the largest batch
    assert plan.startup_trials == 5                                            # TPE guides 27 of 32


def test_asha_rungs_fall_on_reports_so_each_is_rf_times_the_one_before() -> None:
    # bench/hpo.py's cohort: 100 images, batch capped at 25 (4-step epochs), trials up to 12 epochs (48 steps).
    # max_t / rf^2 is 5 steps, which ASHA would judge at the next report (8 steps) and its next rung (15) at
    # 16: epochs 2 and 4, then 12. In whole epochs the rungs are epochs 1, 3 and 9.
    space = (ParamSpec("batch_size", choices=(32, 64)), ParamSpec("epochs", low=1, high=12))
    _, _, plan = plan_sweep(TrainCfg(), SearchCfg(num_samples=64, space=space), n_train=100)
    assert plan.max_steps == 48 and plan.grace_steps == steps_per_epoch(100, 25) == 4
    assert any("ASHA grace 4 steps" in why and "4 steps at batch 25" in why for why in plan.why)


def test_tpes_random_trials_stop_at_the_first_rung_when_tpe_proposes_most_of_the_sweep() -> None:
    space = (ParamSpec("batch_size", choices=(32, 64)), ParamSpec("epochs", low=1, high=12))
    _, _, plan = plan_sweep(TrainCfg(), SearchCfg(num_samples=64, space=space), n_train=100)
    assert plan.startup_trials == 5 and plan.startup_steps == plan.grace_steps == 4
    assert any("random trials stop at ASHA's first rung (4 steps)" in why for why in plan.why)
    # 8 trials, 3 random: TPE still proposes most. 5 trials, 3 random: the sweep would train few in full.
    assert plan_sweep(TrainCfg(), SearchCfg(num_samples=8, space=space), n_train=100)[2].startup_steps == 4
    assert plan_sweep(TrainCfg(), SearchCfg(num_samples=5, space=space), n_train=100)[2].startup_steps == 0
    # No ASHA (bench/hpo.py's random baseline): nothing stops a trial.
    assert plan_sweep(TrainCfg(), SearchCfg(num_samples=64, space=space), 100, False)[2].startup_steps == 0


def test_under_asha_the_epochs_range_is_its_budget_not_a_sampled_key() -> None:
    space = (ParamSpec("lr", low=1e-4, high=1e-2, log=True), ParamSpec("epochs", choices=(3, 9, 6)))
    base, search, plan = plan_sweep(TrainCfg(epochs=4), SearchCfg(num_samples=16, space=space), n_train=4708)
    assert search.space == space[:1] and base.epochs == 9
    assert plan.max_steps == 9 * steps_per_epoch(4708, 64)
    assert any("every trial planned for 9 epochs" in why for why in plan.why)
    # Without early stopping (bench/hpo.py's random baseline) nothing else decides a trial's length.
    base, search, _ = plan_sweep(TrainCfg(epochs=4), SearchCfg(num_samples=16, space=space), 4708, False)
    assert search.space == space and base.epochs == 4


def test_explicit_values_win_over_the_plan() -> None:
    search = SearchCfg(num_samples=16, space=SPACE, batch_cap=0, min_steps=0, grace_period=7, n_startup_trials=2)
    base, out, plan = plan_sweep(TrainCfg(batch_size=64), search, n_train=66)
    assert out.space == SPACE[:1] and base.batch_size == 64 and base.epochs == 6
    assert (plan.min_steps, plan.grace_steps, plan.startup_trials) == (0, 7, 2)


def test_startup_trials_scale_with_the_budget() -> None:
    assert [startup_trials(n) for n in (4, 8, 16, 32, 64)] == [3, 3, 4, 5, 5]
