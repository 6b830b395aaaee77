"""Concurrent trials give the same choices whatever their timing: the real OptunaSearch (seeded TPE with a
constant liar) and ASHA, driven by an event loop that lets the running trials report in a shuffled order,
then the real sweep on a local Ray with trials whose start is delayed at random."""

from __future__ import annotations

import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import optuna
import pytest
from ray import cloudpickle
from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search.optuna import OptunaSearch
from tests._data import learnable_data

from medtune.config import ParamSpec, SearchCfg, TrainCfg
from medtune.tune.ordered import OrderedASHA, OrderedSearch, order_lag
from medtune.tune.runner import Trainable, run_sweep
from medtune.tune.trial import train_trial

N_TRIALS, CONCURRENT, MAX_T = 14, 2, 9


@dataclass(frozen=True)
class Trial:
    trial_id: str


def score(config: dict, t: int) -> float:
    """Learning curves that cross: a high `early` leads at first, a high `late` wins in the end."""
    return config["early"] * min(t, 3) / 3 + 1.5 * config["late"] * t / MAX_T


def optuna_search() -> OptunaSearch:
    space = {"early": optuna.distributions.FloatDistribution(0, 1),
             "late": optuna.distributions.FloatDistribution(0, 1)}
    sampler = optuna.samplers.TPESampler(seed=0, n_startup_trials=3, constant_liar=True)
    return OptunaSearch(space=space, metric="score", mode="max", sampler=sampler)


def sweep(order_seed: int, ordered: bool) -> list[tuple[dict, int]]:
    """Every trial's (config, steps run), in the order proposed; `order_seed` decides which running trial
    reports next, as timing does in Ray. Ray's own wiring: ASHA and the searcher told of each event."""
    searcher = OrderedSearch(optuna_search(), order_lag(CONCURRENT)) if ordered else optuna_search()
    if ordered:
        asha = OrderedASHA(searcher, time_attr="t", max_t=MAX_T, grace_period=1, reduction_factor=3)
    else:
        asha = ASHAScheduler(time_attr="t", max_t=MAX_T, grace_period=1, reduction_factor=3)
    asha.set_search_properties("score", "max")
    rng, running, proposed, calls = random.Random(order_seed), {}, [], 0
    outcome: dict[str, tuple[dict, int]] = {}
    while len(proposed) < N_TRIALS or running:
        if len(proposed) < N_TRIALS and len(running) < CONCURRENT:
            calls += 1
            config = searcher.suggest(f"call-{calls}")
            if config is not None:
                running[f"call-{calls}"] = (config, 0)
                proposed.append(f"call-{calls}")
                asha.on_trial_add(None, Trial(f"call-{calls}"))
                continue
        trial_id = rng.choice(sorted(running))
        config, t = running[trial_id]
        result = {"t": t + 1, "score": score(config, t + 1), "training_iteration": t + 1}
        running[trial_id] = (config, t + 1)
        if asha.on_trial_result(None, Trial(trial_id), result) == TrialScheduler.STOP or t + 1 >= MAX_T:
            searcher.on_trial_complete(trial_id, result)
            outcome[trial_id] = running.pop(trial_id)
    return [outcome[trial_id] for trial_id in proposed]


def test_shuffled_reports_change_nothing_when_ordered() -> None:
    runs = [sweep(seed, ordered=True) for seed in (0, 1, 2)]
    assert runs[0] == runs[1] == runs[2]
    steps = [t for _, t in runs[0]]
    assert min(steps) < MAX_T and max(steps) == MAX_T  # ASHA cut some trials and let others finish


def test_without_the_order_the_same_shuffles_change_the_choices() -> None:
    """The control: plain async ASHA and TPE on the same event streams do not agree (what ordered.py fixes)."""
    runs = [sweep(seed, ordered=False) for seed in (0, 1, 2)]
    assert not runs[0] == runs[1] == runs[2]


def test_lag() -> None:
    assert [order_lag(c) for c in (1, 2, 4)] == [1, 4, 8]


def late_start(config: dict, **kwargs) -> None:
    """The real trial, started after a random delay: the trials of a sweep finish in a different order
    in every run."""
    time.sleep(random.SystemRandom().uniform(0.0, 1.5))
    train_trial(config, **kwargs)


@pytest.mark.ray
@pytest.mark.slow
def test_two_concurrent_sweeps_with_random_delays_choose_alike(tmp_path: Path) -> None:
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module
    data = learnable_data(tmp_path, 96, 48, contrast=0.1)  # learnt partly: configs differ, as on real data
    base = TrainCfg(batch_size=16, epochs=6, depth=2, width=8, augment=0.0, seed=7)
    search = SearchCfg(num_samples=10, max_concurrent_trials=2, n_startup_trials=3, grace_period=6,
                       min_steps=0, space=(ParamSpec("lr", low=1e-4, high=3e-2, log=True),
                                           ParamSpec("dropout", low=0.0, high=0.5)))
    boards = [run_sweep(Trainable(data, base, search, trial_fn=late_start), tmp_path / f"sweep-{i}").leaderboard
              for i in range(2)]
    columns = ["param_lr", "param_dropout", "steps", "stop_reason", "best_val_auroc"]
    a, b = (board.sort_values("param_lr")[columns].reset_index(drop=True) for board in boards)
    assert a.equals(b), f"\n{a}\n{b}"
    assert (a["stop_reason"] == "asha_stopped").any()
