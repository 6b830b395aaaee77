"""The sweep on a real local Ray runtime: OptunaSearch + ASHA over fit(), logged by the driver."""

from __future__ import annotations

import json
import sys
import time
from functools import partial
from pathlib import Path

import optuna
import pytest
import torch
from ray import cloudpickle
from ray.tune.search.optuna import OptunaSearch
from tests._data import learnable_data

from medtune.config import ParamSpec, SearchCfg, TrainCfg
from medtune.data.datamodule import TrainData
from medtune.errors import ConfigError
from medtune.models.inference import load_net, predict_proba
from medtune.tracking.sweep_log import PARENT_TAG, SweepLogger
from medtune.tune.results import best_trial, experiment_tag, stop_reason
from medtune.tune.runner import Trainable, run_sweep
from medtune.tune.scheduler import random_trials
from medtune.tune.space import SearchSpace
from medtune.tune.trial import train_trial
from medtune.tune.warm import WarmStart

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> TrainData:
    return learnable_data(tmp_path_factory.mktemp("store"), 96, 48)


def _random_draws(space: tuple[ParamSpec, ...], seed: int, n: int) -> list[dict]:
    """The first `n` configs a seeded RandomSampler proposes. TPE's random start draws with its own
    RandomSampler of the same seed, so a trial with one of these configs was not a TPE proposal."""
    searcher = OptunaSearch(space=SearchSpace(space), metric="value", mode="max",
                            sampler=optuna.samplers.RandomSampler(seed=seed))
    return [searcher.suggest(str(i)) for i in range(n)]


def test_sweep_reports_every_epoch_and_logs_nested_runs(data: TrainData, tmp_path: Path) -> None:
    base = TrainCfg(batch_size=16, epochs=2, depth=2, width=8, augment=0.0, seed=7)
    search = SearchCfg(num_samples=5, max_concurrent_trials=2, grace_period=1, reduction_factor=2,
                       n_startup_trials=2,
                       space=(ParamSpec("lr", low=1e-3, high=3e-2, log=True),
                              ParamSpec("optimizer", choices=("adam", "sgd_momentum")),
                              ParamSpec("momentum", low=0.8, high=0.95)))
    logger = SweepLogger(f"sqlite:///{tmp_path / 'mlruns.db'}", "sweeps", str(tmp_path / "art"))
    trainable = Trainable(data, base, search)
    result = run_sweep(trainable, tmp_path / "ray" / "sweep-a", logger)

    board = result.leaderboard
    assert len(board) == 5
    # Two at a time, TPE has its two finished trials only when the fourth is created: three random draws,
    # each stopped at the first rung, as random_trials says.
    capped = random_trials(2, told=0, replays=0, concurrent=2)
    assert capped == range(0, 3)
    by_number = board.set_index("trial_number").sort_index()
    drawn = _random_draws(trainable.search.space, base.seed, 4)
    assert [json.loads(c) for c in by_number["config"]][:3] == drawn[:3]
    assert json.loads(by_number.loc[4, "config"]) != drawn[3]
    assert list(by_number.loc[[1, 2, 3], "epochs_run"]) == [1, 1, 1]
    assert set(board["stop_reason"]) <= {"completed", "asha_stopped"}
    assert board["best_val_auroc"].is_monotonic_decreasing
    for config in board["config"].map(json.loads):
        assert ("momentum" in config) == (config["optimizer"] == "sgd_momentum")

    # The driver logged one child run per trial, each with one val_auroc point per epoch run.
    runs = logger.client.search_runs([logger.experiment_id],
                                     filter_string=f"tags.`{PARENT_TAG}` = '{result.parent_run_id}'")
    assert len(runs) == 5
    for run in runs:
        steps = [m.step for m in logger.client.get_metric_history(run.info.run_id, "val_auroc")]
        row = board[board["trial_id"] == run.data.tags["medtune.trial_id"]].iloc[0]
        assert steps == list(range(1, int(row["epochs_run"]) + 1))
        assert run.data.tags["medtune.stop_reason"] == row["stop_reason"]

    # The best checkpoint is the best epoch: reloading it reproduces the reported val AUROC region.
    best = best_trial(board, "max")
    bundle = torch.load(best["checkpoint"], weights_only=True)
    prob = predict_proba(load_net(bundle["net"], bundle["state_dict"]), data.val.x)
    from sklearn.metrics import roc_auc_score
    assert abs(roc_auc_score(data.val.y, prob) - best["value"]) < 1e-4
    assert (result.sweep_dir / "medtune_sweep_done").exists()


def test_the_default_one_trial_at_a_time_repeats_every_choice(data: TrainData, tmp_path: Path) -> None:
    """Two runs of one seed propose the same configs, score them the same and stop the same ones (on two
    threads with augmentation, as params.yaml ships): with trials side by side, timing decides what ASHA
    and TPE have seen."""
    base = TrainCfg(batch_size=16, epochs=3, depth=2, width=8, augment=0.5, seed=11)
    search = SearchCfg(num_samples=6, grace_period=1, reduction_factor=2, n_startup_trials=3, min_steps=0,
                       cpus_per_trial=2, space=(ParamSpec("lr", low=1e-5, high=3e-2, log=True),
                                                ParamSpec("dropout", low=0.0, high=0.5)))
    assert search.max_concurrent_trials == 1
    boards = [run_sweep(Trainable(data, base, search), tmp_path / f"sweep-{i}").leaderboard for i in (1, 2)]
    choices = ["config", "best_val_auroc", "epochs_run", "stop_reason"]
    assert boards[0][choices].reset_index(drop=True).equals(boards[1][choices].reset_index(drop=True))
    assert (boards[0]["stop_reason"] == "asha_stopped").any()  # ASHA made choices to repeat
    # Tune's tags count the trials it creates: the first three, TPE's random start, stop at the first rung.
    first = boards[0].set_index("trial_number").loc[[1, 2, 3]]
    assert list(first["epochs_run"]) == [1, 1, 1]


def test_a_warm_sweep_runs_the_replays_before_tpe_proposes(data: TrainData, tmp_path: Path) -> None:
    base = TrainCfg(batch_size=16, epochs=1, depth=2, width=8, augment=0.0, seed=7)
    search = SearchCfg(num_samples=2, min_steps=0, n_startup_trials=0,
                       space=(ParamSpec("lr", low=1e-3, high=3e-2, log=True),))
    told = [({"lr": 0.002}, 0.7), ({"lr": 0.02}, 0.9), ({"lr": 0.005}, 0.8)]
    trainable = Trainable(data, base, search, warm=WarmStart(told, [{"lr": 0.02}, {"lr": 0.005}]))
    board = run_sweep(trainable, tmp_path / "sweep").leaderboard
    # Sampled, lr would never land on these values exactly: both trials are the queued replays.
    assert sorted(json.loads(c)["lr"] for c in board["config"]) == [0.005, 0.02]


def crash_first(config: dict, *, marker: Path, **kwargs) -> None:
    """The sweep's first trial crashes (a bug on one config's path, a bad node); the rest train."""
    if not marker.exists():
        marker.touch()
        raise RuntimeError("the first trial crashes")
    train_trial(config, **kwargs)


def test_a_trial_that_crashes_in_tpes_start_adds_a_random_draw_and_it_is_capped_too(
        data: TrainData, tmp_path: Path) -> None:
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    base = TrainCfg(batch_size=16, epochs=3, depth=2, width=8, augment=0.0, seed=3)
    search = SearchCfg(num_samples=4, grace_period=1, reduction_factor=2, n_startup_trials=2, min_steps=0,
                       max_failures=0, space=(ParamSpec("lr", low=1e-3, high=3e-2, log=True),))
    trial_fn = partial(crash_first, marker=tmp_path / "crashed")
    board = run_sweep(Trainable(data, base, search, trial_fn=trial_fn), tmp_path / "sweep").leaderboard
    by_number = board.set_index("trial_number").sort_index()
    assert list(by_number.index) == [1, 2, 3, 4]  # the crashed one, which never reported, too
    assert list(by_number["stop_reason"])[:1] == ["error"]
    # Optuna's start does not count the crash: the third trial is a random draw as well, and stops at the
    # first rung with the second; the fourth is TPE's.
    drawn = _random_draws(search.space, base.seed, 4)
    assert [json.loads(c) for c in by_number["config"]][:3] == drawn[:3]
    assert json.loads(by_number.loc[4, "config"]) != drawn[3]
    assert list(by_number.loc[[2, 3], "epochs_run"]) == [1, 1]


def test_stop_reason() -> None:
    assert stop_reason(3, 3, None) == "completed"
    assert stop_reason(1, 3, None) == "asha_stopped"
    assert stop_reason(0, 3, "torch.OutOfMemoryError: CUDA out of memory") == "oom"
    assert stop_reason(0, 3, "ValueError: boom") == "error"


def test_experiment_tag_of_a_trial_that_never_reported_comes_from_its_folder() -> None:
    folder = "/sweeps/a/guarded_trial_7e1e387d_1_lr=0.0065_2026-12-07_01-29-35"
    assert experiment_tag({"experiment_tag": "3_lr=0.01"}, folder) == "3_lr=0.01"
    assert experiment_tag({"trial_id": "7e1e387d"}, folder) == "1_lr=0.0065_2026-12-07_01-29-35"
    assert experiment_tag({"trial_id": "0000"}, folder) == ""  # not this folder's trial: no number


def oom_on_batch_32(config: dict, **kwargs) -> None:
    """A trial that runs out of memory for one batch size, as a too-large config does on a GPU."""
    if config["batch_size"] == 32:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    train_trial(config, **kwargs)


def test_out_of_memory_marks_the_trial_and_the_sweep_goes_on(data: TrainData, tmp_path: Path) -> None:
    # Workers unpickle this test's trial function by value: the test module is not importable there.
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    base = TrainCfg(batch_size=16, epochs=1, depth=2, width=8, augment=0.0, seed=7)
    search = SearchCfg(num_samples=4, max_concurrent_trials=2, max_failures=1, batch_cap=0, min_steps=0,
                       space=(ParamSpec("batch_size", choices=(16, 32)),))
    logger = SweepLogger(f"sqlite:///{tmp_path / 'mlruns.db'}", "sweeps", str(tmp_path / "art"))
    result = run_sweep(Trainable(data, base, search, trial_fn=oom_on_batch_32), tmp_path / "sweep", logger)

    board = result.leaderboard
    assert len(board) == 4
    assert set(board["param_batch_size"]) == {16, 32}
    for _, row in board.iterrows():
        assert (row["stop_reason"] == "oom") == (row["param_batch_size"] == 32)
    assert result.best["config"]["batch_size"] == 16
    runs = logger.client.search_runs([logger.experiment_id], filter_string="tags.`medtune.stop_reason` = 'oom'")
    assert len(runs) == (board["stop_reason"] == "oom").sum()
    assert all(r.info.status == "FAILED" for r in runs)


def test_time_budget_ends_the_sweep_with_what_it_found(data: TrainData, tmp_path: Path) -> None:
    # Trials reuse warm workers and take well under a second here: 1000 of 10 epochs each is ~15x the budget.
    # The budget also covers Ray starting workers: 12 s on a slower CPU beside the other test worker ended the
    # sweep before any trial had reported an epoch.
    base = TrainCfg(batch_size=16, epochs=10, depth=2, width=8, augment=0.0, seed=7)
    search = SearchCfg(num_samples=1000, max_concurrent_trials=2, time_budget_s=30, min_steps=0,
                       space=(ParamSpec("lr", low=1e-3, high=3e-2, log=True),))
    started = time.monotonic()
    result = run_sweep(Trainable(data, base, search), tmp_path / "sweep")
    assert time.monotonic() - started < 120
    assert 1 <= len(result.leaderboard) < 1000
    assert result.best["value"] > 0.5


@pytest.mark.parametrize(("asked", "key"), [({"cpus_per_trial": 64}, "cpus_per_trial"),
                                            ({"gpus_per_trial": 0.25}, "gpus_per_trial")])
def test_a_trial_bigger_than_the_machine_is_refused_at_once(data: TrainData, tmp_path: Path, asked: dict,
                                                            key: str) -> None:
    # Tune would wait for the resources forever, printing nothing: a local Ray has no autoscaler to add them.
    search = SearchCfg(num_samples=1, max_concurrent_trials=1, space=(), **asked)
    started = time.monotonic()
    with pytest.raises(ConfigError, match=rf"^params.yaml: search.{key}: \S+ is more than the \S+ [CG]PUs of "):
        run_sweep(Trainable(data, TrainCfg(epochs=1, depth=2, width=8), search), tmp_path / "ray" / "too-big")
    assert time.monotonic() - started < 30


def test_a_storage_path_that_cannot_be_a_folder_stops_the_sweep_in_one_line(data: TrainData, tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("not a folder")
    search = SearchCfg(num_samples=1, max_concurrent_trials=1, space=())
    with pytest.raises(ConfigError, match=r"^params.yaml: search.storage: cannot create "):
        run_sweep(Trainable(data, TrainCfg(epochs=1, depth=2, width=8), search), tmp_path / "a_file" / "sweep")
