"""Warm start from earlier sweeps recorded in a real MLflow store (SQLite): same data and split hashes
give the earlier finished trials to TPE and queue the best to run again; a changed hash gives none unless a
parent run is named."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import optuna
import pytest

from medtune.config import ParamSpec, SearchCfg, TrainCfg
from medtune.tracking.sweep_log import SweepLogger
from medtune.tune.runner import STUDY, warm_study
from medtune.tune.space import SearchSpace
from medtune.tune.warm import best_configs, warm_points

SPACE = (ParamSpec("lr", low=1e-4, high=1e-2, log=True), ParamSpec("optimizer", choices=("adam", "sgd_momentum")),
         ParamSpec("momentum", low=0.8, high=0.95), ParamSpec("epochs", low=2, high=6))
SEARCH = SearchCfg(metric="val_auroc", mode="max", space=SPACE)
BASE = TrainCfg()  # what record_sweep's trials trained with
HASHES = {"medtune.data_hash": "d1", "medtune.labels_hash": "l1", "medtune.split_hash": "s1"}
TRIALS = [  # (sampled values, best val_auroc, how the trial ended)
    ({"lr": 0.001, "optimizer": "adam", "epochs": 3}, 0.81, "FINISHED"),
    ({"lr": 0.003, "optimizer": "sgd_momentum", "momentum": 0.9, "epochs": 5}, 0.86, "FINISHED"),
    ({"lr": 0.05, "optimizer": "adam", "epochs": 4}, 0.70, "FINISHED"),     # lr outside today's space
    ({"lr": 0.002, "optimizer": "adam", "epochs": 2}, 0.90, "FAILED"),      # failed: not a result
]


def record_sweep(uri: str, tmp_path: Path, hashes: dict[str, str]) -> str:
    """One finished sweep in MLflow, written the way the tune driver writes one."""
    logger = SweepLogger(uri, "warm", str(tmp_path / "art"), tags=hashes)
    for i, (values, value, status) in enumerate(TRIALS):
        logger.trial_started(f"t{i}", {**dataclasses.asdict(BASE), **values})
        logger.trial_result(f"t{i}", {"val_auroc": value, "best_val_auroc": value}, step=1)
        logger.trial_ended(f"t{i}", status, "completed", {})
    logger.finish({}, [], {})
    return logger.parent_run_id


@pytest.fixture
def uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlruns.db'}"


def test_same_data_and_split_warm_starts_from_the_finished_trials_in_the_space(uri: str, tmp_path: Path) -> None:
    record_sweep(uri, tmp_path, HASHES)
    new = SweepLogger(uri, "warm", str(tmp_path / "art"), tags=HASHES)
    warm = warm_points(new, SEARCH, dataclasses.replace(BASE, seed=BASE.seed + 1), HASHES)
    got = sorted((p["lr"], p["optimizer"], p.get("momentum"), p["epochs"], v) for p, v in warm.points)
    assert got == [(0.001, "adam", None, 3, 0.81), (0.003, "sgd_momentum", 0.9, 5, 0.86)]
    assert warm.note.endswith("2 finished trials from 1 earlier sweep(s) on the same data and split; "
                              "the best 2 run again first")
    assert warm.replays == [p for p, _ in sorted(warm.points, key=lambda p: -p[1])]  # best first
    # The searcher's study starts with them as finished trials, typed as the space samples them, and proposes
    # the replays first, in order, before TPE samples anything.
    storage = warm_study(SearchSpace(SPACE), "max", warm)
    study = optuna.load_study(study_name=STUDY, storage=storage)
    finished = optuna.trial.TrialState.COMPLETE
    assert [t.state for t in study.trials] == [finished] * 2 + [optuna.trial.TrialState.WAITING] * 2
    assert study.best_value == 0.86 and study.best_params["momentum"] == 0.9
    for replay in warm.replays:
        trial = study.ask()
        SearchSpace(SPACE)(trial)  # what OptunaSearch does per proposal
        assert trial.params == replay


def test_a_replay_that_would_retrace_a_logged_run_is_not_queued(uri: str, tmp_path: Path) -> None:
    """Same seed and train values as the earlier trials: running their configs again would repeat known results."""
    record_sweep(uri, tmp_path, HASHES)
    new = SweepLogger(uri, "warm", str(tmp_path / "art"), tags=HASHES)
    warm = warm_points(new, SEARCH, BASE, HASHES)
    assert len(warm.points) == 2 and warm.replays == []
    assert warm.note.endswith("2 finished trials from 1 earlier sweep(s) on the same data and split")


def test_best_configs_ranks_by_mode_and_skips_repeats_and_nan() -> None:
    a, b, c = {"lr": 0.1}, {"lr": 0.2}, {"lr": 0.3}
    points = [(a, 0.5), (b, 0.9), (b, 0.8), (c, float("nan")), (c, 0.1)]
    assert best_configs(points, "max", retraced=[]) == [b, a, c]
    assert best_configs(points, "min", retraced=[], k=2) == [c, a]
    assert best_configs(points, "max", retraced=[b], k=1) == [a]


def test_a_changed_hash_starts_cold_unless_a_parent_is_named(uri: str, tmp_path: Path) -> None:
    parent = record_sweep(uri, tmp_path, HASHES)
    other = {**HASHES, "medtune.split_hash": "s2"}
    new = SweepLogger(uri, "warm", str(tmp_path / "art"), tags=other)
    cold = warm_points(new, SEARCH, BASE, other)
    assert cold.points == cold.replays == [] and cold.note.startswith("cold start")
    named = warm_points(new, dataclasses.replace(SEARCH, warm_start=parent), BASE, other)
    assert len(named.points) == 2 and parent in named.note
    off = warm_points(new, dataclasses.replace(SEARCH, warm_start="off"), BASE, HASHES)
    assert off.points == off.replays == []


def test_an_unknown_data_hash_never_matches(uri: str, tmp_path: Path) -> None:
    unknown = {**HASHES, "medtune.data_hash": "unknown"}
    record_sweep(uri, tmp_path, unknown)
    new = SweepLogger(uri, "warm", str(tmp_path / "art"), tags=unknown)
    assert warm_points(new, SEARCH, BASE, unknown).points == []
