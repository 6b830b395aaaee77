"""Ray Tune sweep: OptunaSearch (seeded multivariate TPE) + ASHA over `fit()`.

This is the only module that imports Ray (its API moves between releases; docs/architecture.md). Trials run
`medtune.train.fit` and report every epoch; the driver turns those reports into MLflow runs through
SweepLogger, so workers never need a route to the tracking server.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import pytorch_lightning as pl
import ray
import torch
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch

from medtune.config import SearchCfg, TrainCfg, largest
from medtune.data.datamodule import TrainData
from medtune.errors import MedtuneError
from medtune.task import resolve_selection
from medtune.tracking.sweep_log import SweepLogger
from medtune.train import fit
from medtune.tune.space import SearchSpace

CHECKPOINT_FILE = "model.pt"
TRAINER_FILE = "trainer.ckpt"
PROGRESS_FILE = "progress.json"
DONE_MARKER = "medtune_sweep_done"
PARENT_RUN_FILE = "mlflow_parent_run_id"


@dataclass
class SweepResult:
    leaderboard: pd.DataFrame
    best: dict[str, Any]          # trial_id, config, value, checkpoint (path to model.pt)
    parent_run_id: str | None
    sweep_dir: Path
    history: dict[str, pd.DataFrame]   # trial_id -> per-epoch metrics (learning curves)


class ReportEachEpoch(pl.Callback):
    """Report every epoch to Tune (this epoch's metrics and the best so far) with a checkpoint:
    the bare weights (for promote) and the Lightning state (to resume a retried or restored trial)."""

    def __init__(self, metric: str, mode: str, best: float | None = None) -> None:
        self.metric, self.sign, self.best = metric, (1.0 if mode == "max" else -1.0), best

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        # fit() documents that this epoch's train and val metrics are in callback_metrics here.
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        metrics["epoch"] = trainer.current_epoch + 1
        current = metrics.get(self.metric)
        if current is not None and (self.best is None or self.sign * current > self.sign * self.best):
            self.best = current
        metrics[f"best_{self.metric}"] = self.best if self.best is not None else float("nan")
        metrics["node_id"] = ray.get_runtime_context().get_node_id()  # where this epoch ran (retries move)
        with tempfile.TemporaryDirectory() as tmp:
            state = {k: v.detach().cpu() for k, v in module.net.state_dict().items()}
            torch.save({"net": dict(module.hparams.net), "state_dict": state, "epoch": metrics["epoch"]},
                       Path(tmp) / CHECKPOINT_FILE)
            trainer.save_checkpoint(Path(tmp) / TRAINER_FILE)
            (Path(tmp) / PROGRESS_FILE).write_text(json.dumps({"best": self.best}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def train_trial(config: dict[str, Any], data: TrainData, base: TrainCfg, metric: str, mode: str,
                threads: int, accelerator: str, init_states: dict[str, dict]) -> None:
    """One trial: the sampled values override the train defaults, then a plain `fit()` - continued
    from the trial's last checkpoint when Tune retries or restores it."""
    torch.set_num_threads(threads)
    cfg = dataclasses.replace(base, **config)
    checkpoint, resume, best = tune.get_checkpoint(), None, None
    with tempfile.TemporaryDirectory() as local:
        if checkpoint is not None:
            with checkpoint.as_directory() as ckpt_dir:
                resume = shutil.copy(Path(ckpt_dir) / TRAINER_FILE, Path(local) / TRAINER_FILE)
                best = json.loads((Path(ckpt_dir) / PROGRESS_FILE).read_text())["best"]
        fit(cfg, data, callbacks=[ReportEachEpoch(metric, mode, best)], accelerator=accelerator,
            init_state=init_states.get(cfg.arch), resume_ckpt=resume)


def guarded_trial(config: dict[str, Any], trial_fn: Callable[..., None], metric: str, **kwargs: Any) -> None:
    """Out of memory ends this trial with reason `oom` instead of an error Tune would retry: a
    config that does not fit will not fit on the second try either, and the sweep goes on."""
    try:
        trial_fn(config, metric=metric, **kwargs)
    except torch.OutOfMemoryError as exc:
        tune.report({"oom": 1.0, f"best_{metric}": float("nan"), "error": str(exc).splitlines()[0][:300]})


class MlflowDriverCallback(tune.Callback):
    """Forwards trial events to SweepLogger on the driver (MLflow's one writer)."""

    def __init__(self, logger: SweepLogger, base: TrainCfg) -> None:
        self.logger, self.base = logger, base

    def __getstate__(self) -> dict[str, Any]:
        # Ray pickles the run config into the experiment state; a live MLflow client is not state.
        return {"logger": None, "base": self.base}

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.logger.trial_started(trial.trial_id, {**dataclasses.asdict(self.base), **trial.config})

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if trial.trial_id not in self.logger.children:  # restored trial: reopen its run
            self.on_trial_start(iteration, trials, trial)
        keep = {k: v for k, v in result.items() if k.startswith(("val_", "train_", "best_"))}
        self.logger.trial_result(trial.trial_id, keep, step=int(result.get("epoch", 0)))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        error = "OutOfMemoryError: " + str(last.get("error")) if last.get("oom") else None
        reason = stop_reason(last.get("epoch", 0), trial.config.get("epochs", self.base.epochs), error)
        summary = {"epochs_run": last.get("epoch", 0), "node_id": last.get("node_id", "")}
        self.logger.trial_ended(trial.trial_id, "FAILED" if error else "FINISHED", reason,
                                {**summary, **({"error": error} if error else {})})

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = _read_error(trial)
        self.logger.trial_ended(trial.trial_id, "FAILED", stop_reason(0, 1, error),
                                {"error": error.splitlines()[-1] if error else "unknown"})


def _read_error(trial: Any) -> str:
    path = getattr(trial, "error_file", None) or getattr(trial, "pickled_error_file", None)
    try:
        return Path(path).read_text(errors="replace") if path and str(path).endswith(".txt") else ""
    except OSError:
        return ""


def stop_reason(epochs_run: int, epochs_planned: int, error: str | None) -> str:
    """Why a trial ended: completed, asha_stopped, oom or error (no_result: stopped before reporting)."""
    if error:
        return "oom" if "OutOfMemoryError" in error or "out of memory" in error else "error"
    return "completed" if epochs_run >= epochs_planned else "asha_stopped"


def connect(address: str | None, num_cpus: int | None = None) -> None:
    """Join RAY_ADDRESS / `search.address` when given, else start a local Ray kept on loopback."""
    # Save the experiment state every 2 s (Ray's "auto" waits >= 10 s): a killed driver then loses
    # at most 2 s of bookkeeping, so a resumed sweep does not re-run trials that had finished.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS") or address
    if address:
        ray.init(address=address, log_to_driver=False)
        return
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    # address="local": always a new private instance. A bare ray.init() attaches to any Ray already
    # running on the machine (another sweep, a test cluster), which may advertise a non-loopback address.
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             _node_ip_address="127.0.0.1")


@dataclass
class Trainable:
    """What every trial needs besides its sampled config; rebuilt identically on restore."""

    data: TrainData
    base: TrainCfg
    search: SearchCfg
    init_states: dict[str, dict] = dataclasses.field(default_factory=dict)  # arch -> pretrained weights
    trial_fn: Callable[..., None] = train_trial  # injectable for fault tests

    def __post_init__(self) -> None:
        self.search = resolve_selection(self.search, self.data.task)  # `auto`: the task's metric and mode

    def build(self) -> Any:
        fn = tune.with_parameters(
            guarded_trial, trial_fn=self.trial_fn, data=self.data, base=self.base,
            metric=self.search.metric, mode=self.search.mode, threads=max(1, int(self.search.cpus_per_trial)),
            accelerator="gpu" if self.search.gpus_per_trial > 0 else "cpu", init_states=self.init_states)
        return tune.with_resources(fn, {"cpu": self.search.cpus_per_trial, "gpu": self.search.gpus_per_trial})


STRATEGIES = ("tpe_asha", "random")


def build_tuner(trainable: Trainable, sweep_dir: Path, callbacks: list[tune.Callback],
                strategy: str = "tpe_asha") -> tune.Tuner:
    """A new sweep. tpe_asha: seeded multivariate TPE proposes, ASHA stops weak trials early.
    random: the baseline of bench/hpo.py, seeded random sampling with every trial run to the end."""
    base, search = trainable.base, trainable.search
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy {strategy!r} is not one of {STRATEGIES}")
    with warnings.catch_warnings():  # multivariate/group TPE are "experimental" in Optuna: chosen on purpose
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = (optuna.samplers.TPESampler(seed=base.seed, multivariate=True, group=True)
                   if strategy == "tpe_asha" else optuna.samplers.RandomSampler(seed=base.seed))
    searcher = OptunaSearch(space=SearchSpace(search.space), metric=f"best_{search.metric}",
                            mode=search.mode, sampler=sampler)
    scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=int(largest("epochs", base, search.space)),
                               grace_period=search.grace_period, reduction_factor=search.reduction_factor)
                 if strategy == "tpe_asha" else tune.schedulers.FIFOScheduler())
    return tune.Tuner(
        trainable.build(),
        tune_config=tune.TuneConfig(metric=f"best_{search.metric}", mode=search.mode,
                                    search_alg=searcher, scheduler=scheduler,
                                    num_samples=search.num_samples,
                                    max_concurrent_trials=search.max_concurrent_trials,
                                    time_budget_s=search.time_budget_s or None),
        run_config=_run_config(sweep_dir, search, callbacks))


def _run_config(sweep_dir: Path, search: SearchCfg, callbacks: list[tune.Callback]) -> tune.RunConfig:
    return tune.RunConfig(
        name=sweep_dir.name, storage_path=str(sweep_dir.parent.resolve()), callbacks=callbacks,
        failure_config=tune.FailureConfig(max_failures=search.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=search.keep_checkpoints,
                                                checkpoint_score_attribute=search.metric,
                                                checkpoint_score_order=search.mode),
        verbose=1)


def run_sweep(trainable: Trainable, sweep_dir: Path, logger: SweepLogger | None = None,
              resume: bool = True) -> SweepResult:
    """Run (or, when `sweep_dir` holds an unfinished sweep and `resume`, restore) the sweep."""
    base, search = trainable.base, trainable.search
    sweep_dir = sweep_dir.resolve()
    connect(search.address)
    callbacks = [MlflowDriverCallback(logger, base)] if logger else []
    if resume and tune.Tuner.can_restore(str(sweep_dir)) and not (sweep_dir / DONE_MARKER).exists():
        print(f"medtune: resuming the unfinished sweep in {sweep_dir}")
        tuner = tune.Tuner.restore(str(sweep_dir), trainable=trainable.build(), resume_errored=True)
        # The restored run config carries unpickled callbacks without their MLflow client:
        # re-attach live ones (private attribute; Ray is pinned, and this is its only user).
        tuner._local_tuner.get_run_config().callbacks = callbacks
    else:
        shutil.rmtree(sweep_dir, ignore_errors=True)
        tuner = build_tuner(trainable, sweep_dir, callbacks)
    if logger:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PARENT_RUN_FILE).write_text(logger.parent_run_id)
    grid = tuner.fit()
    board = leaderboard(grid, base, search.metric, search.mode)
    (sweep_dir / DONE_MARKER).write_text("done\n")
    return SweepResult(board, best_trial(board, search.mode), logger.parent_run_id if logger else None,
                       sweep_dir, histories(grid))


def saved_parent_run(sweep_dir: Path) -> str | None:
    """The MLflow parent run of an unfinished sweep, so a resumed sweep keeps logging into it."""
    path = sweep_dir / PARENT_RUN_FILE
    if path.is_file() and not (sweep_dir / DONE_MARKER).exists():
        return path.read_text().strip() or None
    return None


def leaderboard(grid: tune.ResultGrid, base: TrainCfg, metric: str, mode: str) -> pd.DataFrame:
    """One row per trial, best first: metric, stop reason, epochs run, checkpoint and its config."""
    rows = []
    for result in grid:
        # A trial stopped (time budget, interrupted sweep) before its first report has no metrics or config.
        last, config = result.metrics or {}, result.config or {}
        error = str(result.error) if result.error else None
        if last.get("oom"):
            error = f"OutOfMemoryError: {last.get('error')}"
        planned = config.get("epochs", base.epochs)
        best_ckpt = result.get_best_checkpoint(metric, mode) if result.best_checkpoints else None
        ckpt = best_ckpt.path if best_ckpt else None
        rows.append({
            "trial_id": last.get("trial_id") or Path(result.path).name,
            f"best_{metric}": last.get(f"best_{metric}"),
            "stop_reason": "no_result" if not last else stop_reason(last.get("epoch", 0), planned, error),
            "epochs_run": last.get("epoch", 0),
            "seconds": last.get("time_total_s"),
            "node_id": last.get("node_id"),
            "checkpoint": str(Path(ckpt) / CHECKPOINT_FILE) if ckpt else None,
            "config": json.dumps(config, sort_keys=True),
            **{f"param_{k}": v for k, v in sorted(config.items())},
        })
    board = pd.DataFrame(rows)
    return board.sort_values(f"best_{metric}", ascending=(mode == "min"),
                             na_position="last").reset_index(drop=True)


def histories(grid: tune.ResultGrid) -> dict[str, pd.DataFrame]:
    """Per-epoch metrics of every trial, for learning curves."""
    out = {}
    for result in grid:
        frame = result.metrics_dataframe
        if frame is not None and not frame.empty and "trial_id" in frame:
            out[str(frame["trial_id"].iloc[0])] = frame
    return out


def best_trial(board: pd.DataFrame, mode: str) -> dict[str, Any]:
    """The best trial with a checkpoint; raises if every trial failed."""
    metric_col = next(c for c in board.columns if c.startswith("best_"))
    usable = board.dropna(subset=[metric_col, "checkpoint"])
    if usable.empty:
        raise MedtuneError("tune: every trial failed; see reports/tune/leaderboard.csv for the reasons")
    row = usable.sort_values(metric_col, ascending=(mode == "min")).iloc[0]
    return {"trial_id": row["trial_id"], "metric": metric_col.removeprefix("best_"),
            "value": float(row[metric_col]), "config": json.loads(row["config"]),
            "checkpoint": row["checkpoint"], "epochs_run": int(row["epochs_run"])}
