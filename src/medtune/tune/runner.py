"""Ray Tune sweep: OptunaSearch (seeded multivariate TPE, warm-started from earlier sweeps) + ASHA over `fit()`.

Ray is confined to the tune/ package (its API moves between releases; docs/architecture.md): this module
builds and runs the Tuner, `trial.py` is what runs on a worker (`launch.py` what Tune is handed, which
imports it there), `callbacks.py` what the driver does per trial event, `results.py` the tables a finished
sweep leaves. The driver turns trial reports into MLflow runs through SweepLogger, so workers never need
a route to the tracking server.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import ray
from ray import tune
from ray.tune.execution import class_cache
from ray.tune.search.optuna import OptunaSearch

from medtune.config import SearchCfg, TrainCfg
from medtune.data.datamodule import TrainData
from medtune.task import resolve_selection
from medtune.tracking.sweep_log import SweepLogger
from medtune.tune.callbacks import MlflowDriverCallback
from medtune.tune.cluster import check_reachable, check_storage, check_trial_fits
from medtune.tune.console import TrialLines, quiet_logs
from medtune.tune.launch import TRIAL_MODULE, guarded_trial
from medtune.tune.plan import Plan, plan_sweep
from medtune.tune.restore import repair_cut_state, restore_missing_checkpoints
from medtune.tune.results import SweepResult, best_trial, histories, leaderboard
from medtune.tune.scheduler import StartupCappedASHA, random_trials
from medtune.tune.space import SearchSpace
from medtune.tune.warm import WarmStart

DONE_MARKER = "medtune_sweep_done"
PARENT_RUN_FILE = "mlflow_parent_run_id"
STRATEGIES = ("tpe_asha", "random")
STUDY = "medtune-sweep"
IDLE_WORKER_KEEP_S = 300  # a prestarted worker waits this long for its first trial


def cluster_address(address: str | None) -> tuple[str | None, str]:
    """The Ray cluster a sweep joins (None: a local Ray) and the setting that named it: RAY_ADDRESS wins
    over `search.address`."""
    if os.environ.get("RAY_ADDRESS"):
        return os.environ["RAY_ADDRESS"], "RAY_ADDRESS"
    return address, "params.yaml: search.address"


def connect(address: str | None, num_cpus: int | None = None, quiet: bool = True) -> None:
    """Join RAY_ADDRESS / `search.address` when given, else start a local Ray kept on loopback whose worker
    processes import the training stack at once, while the driver prepares data. `quiet`: Ray's own log
    lines only from errors up."""
    # Save the experiment state every 2 s (Ray's "auto" waits >= 10 s): a killed driver then loses
    # at most 2 s of bookkeeping, so a resumed sweep does not re-run trials that had finished.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    if ray.is_initialized():
        return
    address, source = cluster_address(address)
    level = logging.ERROR if quiet else logging.INFO
    if address:
        check_reachable(address, source)
        ray.init(address=address, log_to_driver=False, logging_level=level)
        return
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    _share_trial_env()
    # address="local": always a new private instance. A bare ray.init() attaches to any Ray already
    # running on the machine (another sweep, a test cluster), which may advertise a non-loopback address.
    # Ray starts one worker per CPU with ray.init; preloaded, they import torch and Lightning (~4 s) before
    # the first trial asks for them, and Tune places its trial actors there (bench/overhead.py measures it).
    # Ray kills a worker idle for 1 s, which would be all of them by the time the driver has loaded the
    # data: they are kept for as long as a stage prepares.
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             logging_level=level, _node_ip_address="127.0.0.1",
             _system_config={"preload_python_modules": [TRIAL_MODULE],
                             "idle_worker_killing_time_threshold_ms": IDLE_WORKER_KEEP_S * 1000})


def _share_trial_env() -> None:
    """Let trial actors run in Ray's prestarted workers. Ray gives an actor a pooled worker only when their
    runtime envs match, and Tune gives every trainable `{"env_vars": {"PL_DISABLE_FORK": "1"}}`, which sends
    each trial to a fresh process that imports everything again. On a local Ray the workers inherit this
    process's environment, so the variable is set here and Tune's copy dropped (a private constant of the
    pinned Ray; a remote cluster keeps Tune's default)."""
    os.environ.setdefault("PL_DISABLE_FORK", "1")
    class_cache.DEFAULT_ENV_VARS.pop("PL_DISABLE_FORK", None)


@dataclass
class Trainable:
    """What every trial needs besides its sampled config; rebuilt identically on restore."""

    data: TrainData
    base: TrainCfg
    search: SearchCfg
    init_states: dict[str, dict] = dataclasses.field(default_factory=dict)  # arch -> pretrained weights
    trial_fn: Callable[..., None] | None = None  # None: trial.train_trial; injectable for fault tests
    warm: WarmStart = dataclasses.field(default_factory=WarmStart)  # earlier trials TPE is told and runs first
    epochs_as_budget: bool = True  # False: epochs sampled like any key (bench/hpo.py's random baseline)
    plan: Plan = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.search = resolve_selection(self.search, self.data.task)  # `auto`: the task's metric and mode
        self.base, self.search, self.plan = plan_sweep(self.base, self.search, len(self.data.train),
                                                       self.epochs_as_budget)

    def build(self) -> Any:
        fn = tune.with_parameters(
            guarded_trial, trial_fn=self.trial_fn, data=self.data, base=self.base,
            metric=self.search.metric, mode=self.search.mode, threads=max(1, int(self.search.cpus_per_trial)),
            accelerator="gpu" if self.search.gpus_per_trial > 0 else "cpu", init_states=self.init_states,
            min_steps=self.plan.min_steps)
        return tune.with_resources(fn, {"cpu": self.search.cpus_per_trial, "gpu": self.search.gpus_per_trial})


def build_searcher(trainable: Trainable, strategy: str) -> OptunaSearch:
    """Seeded TPE (multivariate, constant liar for concurrent trials, random for the planned first trials)
    told the finished trials of earlier sweeps first; or seeded random sampling."""
    base, search = trainable.base, trainable.search
    with warnings.catch_warnings():  # multivariate/group TPE are "experimental" in Optuna: chosen on purpose
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = (optuna.samplers.TPESampler(seed=base.seed, multivariate=True, group=True, constant_liar=True,
                                              n_startup_trials=trainable.plan.startup_trials)
                   if strategy == "tpe_asha" else optuna.samplers.RandomSampler(seed=base.seed))
    storage = warm_study(SearchSpace(search.space), search.mode,
                         trainable.warm if strategy == "tpe_asha" else WarmStart())
    return OptunaSearch(space=SearchSpace(search.space), metric=f"best_{search.metric}", mode=search.mode,
                        sampler=sampler, storage=storage, study_name=STUDY)


def warm_study(space: SearchSpace, mode: str, warm: WarmStart) -> optuna.storages.BaseStorage:
    """An in-memory study holding the warm-start trials as finished ones and the replays queued, so its first
    proposals are the replays in order; OptunaSearch loads it by name."""
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(storage=storage, study_name=STUDY,
                                direction="maximize" if mode == "max" else "minimize")
    for params, value in warm.points:
        study.add_trial(space.frozen(params, value))
    for params in warm.replays:  # not skip_if_exists: every replay is already in the study as a finished trial
        study.enqueue_trial(params)
    return storage


def build_tuner(trainable: Trainable, sweep_dir: Path, callbacks: list[tune.Callback],
                strategy: str = "tpe_asha", verbose: bool = False) -> tune.Tuner:
    """A new sweep. tpe_asha: seeded multivariate TPE proposes, ASHA stops weak trials early (its clock is
    optimizer steps, so trials with different batch sizes are compared at equal training), and the trials
    TPE's random start draws at its first rung (scheduler.py).
    random: the baseline of bench/hpo.py, seeded random sampling with every trial run to the end."""
    search, plan = trainable.search, trainable.plan
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is not one of {STRATEGIES}")
    warm = trainable.warm
    scheduler = (StartupCappedASHA(time_attr="steps", max_t=plan.max_steps, grace_period=plan.grace_steps,
                                   reduction_factor=search.reduction_factor, cap=plan.startup_steps,
                                   capped=random_trials(plan.startup_trials, len(warm.points), len(warm.replays),
                                                        search.max_concurrent_trials),
                                   startup_left=plan.startup_trials - len(warm.points))
                 if strategy == "tpe_asha" else tune.schedulers.FIFOScheduler())
    return tune.Tuner(
        trainable.build(),
        tune_config=tune.TuneConfig(metric=f"best_{search.metric}", mode=search.mode,
                                    search_alg=build_searcher(trainable, strategy), scheduler=scheduler,
                                    num_samples=search.num_samples,
                                    max_concurrent_trials=search.max_concurrent_trials,
                                    time_budget_s=search.time_budget_s or None,
                                    reuse_actors=True),  # a finished trial's process runs the next: no re-import
        run_config=_run_config(sweep_dir, search, callbacks, verbose))


def _run_config(sweep_dir: Path, search: SearchCfg, callbacks: list[tune.Callback], verbose: bool) -> tune.RunConfig:
    return tune.RunConfig(
        name=sweep_dir.name, storage_path=str(sweep_dir.parent.resolve()), callbacks=callbacks,
        failure_config=tune.FailureConfig(max_failures=search.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=search.keep_checkpoints,
                                                checkpoint_score_attribute=search.metric,
                                                checkpoint_score_order=search.mode),
        verbose=1 if verbose else 0)


def sweep_callbacks(trainable: Trainable, logger: SweepLogger | None, verbose: bool) -> list[tune.Callback]:
    """MLflow logging when there is a logger; one console line per trial unless Ray's tables are asked for."""
    base, search = trainable.base, trainable.search
    out: list[tune.Callback] = [MlflowDriverCallback(logger, base)] if logger else []
    if not verbose:
        out.append(TrialLines(search.metric, search.mode, base, search.num_samples, search.time_budget_s))
    return out


def run_sweep(trainable: Trainable, sweep_dir: Path, logger: SweepLogger | None = None,
              resume: bool = True, verbose: bool = False) -> SweepResult:
    """Run (or, when `sweep_dir` holds an unfinished sweep and `resume`, restore) the sweep."""
    base, search = trainable.base, trainable.search
    sweep_dir = sweep_dir.resolve()
    check_storage(sweep_dir.parent)
    connect(search.address, quiet=not verbose)
    if cluster_address(search.address)[0] is None:
        check_trial_fits(search, ray.cluster_resources())
    quiet_logs(verbose)
    callbacks = sweep_callbacks(trainable, logger, verbose)
    if resume and tune.Tuner.can_restore(str(sweep_dir)) and not (sweep_dir / DONE_MARKER).exists():
        print(f"medtune: resuming the unfinished sweep in {sweep_dir}")
        for name in repair_cut_state(sweep_dir):
            print(f"medtune: {name} was cut short when the sweep stopped; its last whole save is restored")
        for trial, checkpoint in restore_missing_checkpoints(sweep_dir).items():
            print(f"medtune: {trial} resumes from its newer {checkpoint}: the one the saved state names was "
                  "deleted before the driver stopped")
        tuner = tune.Tuner.restore(str(sweep_dir), trainable=trainable.build(), resume_errored=True)
        # The restored run config carries unpickled callbacks without their MLflow client:
        # re-attach live ones (private attribute; Ray is pinned, and this is its only user).
        tuner._local_tuner.get_run_config().callbacks = callbacks
    else:
        shutil.rmtree(sweep_dir, ignore_errors=True)
        tuner = build_tuner(trainable, sweep_dir, callbacks, verbose=verbose)
    if logger:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_RUN_FILE).write_text(logger.parent_run_id)
    grid = tuner.fit()
    board = leaderboard(grid, base, search.metric, search.mode)
    (sweep_dir / DONE_MARKER).write_text("done\n")
    history = histories(grid)
    if logger:
        history |= logged_curves(logger, [t for t in board["trial_id"] if t not in history], search.metric)
    return SweepResult(board, best_trial(board, search.mode), logger.parent_run_id if logger else None,
                       sweep_dir, history)


def logged_curves(logger: SweepLogger, trial_ids: list[str], metric: str) -> dict[str, pd.DataFrame]:
    """Learning curves from MLflow for trials Ray has none of: a driver killed while Ray copied a finished
    trial's result file leaves it cut short, and the resumed sweep reads nothing from it."""
    curves = {trial: logger.trial_history(trial, metric) for trial in trial_ids}
    return {trial: frame for trial, frame in curves.items() if frame is not None}


def saved_parent_run(sweep_dir: Path) -> str | None:
    """The MLflow parent run of an unfinished sweep, so a resumed sweep keeps logging into it."""
    path = sweep_dir / PARENT_RUN_FILE
    if path.is_file() and not (sweep_dir / DONE_MARKER).exists():
        return path.read_text().strip() or None
    return None
