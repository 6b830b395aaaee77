"""`fit(cfg, data)`: the one training function behind tests, the tune runner and the benchmarks.

It knows nothing of Ray or MLflow: callers observe it through Lightning callbacks (the tune runner
passes one that reports each epoch) and read the returned FitResult.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pytorch_lightning as pl
import torch

from medtune.config import TrainCfg
from medtune.config.space import min_image_size
from medtune.data.datamodule import TrainData, make_loaders
from medtune.errors import ConfigError
from medtune.models.heads import loss_weights
from medtune.models.lit_module import LitModel
from medtune.models.nets import NetSpec, layout, net_spec_for
from medtune.models.weights import load_pretrained
from medtune.task import METRICS


@dataclass
class FitResult:
    """What a run produced: best-epoch metrics, per-epoch history, the best weights (on CPU) and that
    epoch's validation predictions (probabilities, or values for regression) in val order."""

    metrics: dict[str, float]
    history: list[dict] = field(default_factory=list)
    best_epoch: int = -1
    state_dict: dict = field(default_factory=dict)
    net: dict = field(default_factory=dict)
    val_prob: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.float32))


def _is_better(row: dict, best: dict | None, metric: str, mode: str) -> bool:
    """The better `metric` wins (a NaN, e.g. AUROC of a one-class val, ranks last); ties: lower val_loss."""
    if best is None:
        return True
    sign = 1.0 if mode == "max" else -1.0
    value = sign * row[metric] if math.isfinite(row[metric]) else -math.inf
    best_value = sign * best[metric] if math.isfinite(best[metric]) else -math.inf
    return value > best_value or (value == best_value and row["val_loss"] < best["val_loss"])


class _HistoryCallback(pl.Callback):
    """Records each epoch's metrics and keeps a CPU copy of the best epoch's weights and val predictions.

    Placed first in the callback list, so an epoch is recorded before any caller callback (e.g. Ray's
    reporter) can stop the run.
    """

    def __init__(self, keys: tuple[str, ...], metric: str, mode: str) -> None:
        self.keys, self.metric, self.mode = keys, metric, mode
        self.history: list[dict] = []
        self.best: dict | None = None
        self.best_state: dict = {}
        self.val_prob = np.empty(0, dtype=np.float32)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        row: dict = {"epoch": trainer.current_epoch}
        row.update({k: float(metrics[k]) if k in metrics else math.nan for k in self.keys})
        self.history.append(row)
        if _is_better(row, self.best, self.metric, self.mode):
            assert isinstance(pl_module, LitModel)
            self.best = row
            self.best_state = {k: v.detach().cpu().clone() for k, v in pl_module.evaluated_net().state_dict().items()}
            self.val_prob = pl_module.epoch_val_outputs()


def _check_fits_image(cfg: TrainCfg, spec: NetSpec, image_size: int) -> None:
    """The network must fit the image, and freeze_blocks must name blocks it has."""
    need, why = min_image_size(cfg, ())
    if need > image_size:
        raise ConfigError(f"train: a {image_size}px image is too small for {cfg.arch} ({why}); need >= {need}")
    blocks = len(layout(spec).blocks)
    if cfg.freeze_blocks > blocks:
        raise ConfigError(f"train.freeze_blocks: {cfg.freeze_blocks} is more than the {blocks} blocks of {cfg.arch}")


def precision_for(setting: str, accelerator: str) -> str:
    """`auto`: bf16-mixed on GPUs that have it, 16-mixed on older GPUs, 32 on CPU."""
    if setting != "auto":
        return setting
    if accelerator == "cpu" or not torch.cuda.is_available():
        return "32"
    return "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"


def loader_workers(setting: int | str, accelerator: str) -> int:
    """`auto`: none on CPU (the loader would take cores from the model), the trial's threads minus one on GPU."""
    if setting != "auto":
        return int(setting)
    return 0 if accelerator == "cpu" else max(0, min(8, torch.get_num_threads() - 1))


def _train_batches(limit: float) -> int | float:
    """Lightning reads a float as a fraction of the epoch and an int as a batch count."""
    return int(limit) if limit > 1 else float(limit)


def _make_trainer(cfg: TrainCfg, callbacks: list[pl.Callback], accelerator: str) -> pl.Trainer:
    """A quiet Trainer: no checkpoints, logger or progress bar (the caller observes via callbacks)."""
    # Deterministic kernels are cheap on CPU; on GPU some (pooling backward) have none, so there we
    # trade bit-exactness for running at all. fit() restores the process-wide switch afterwards.
    deterministic = accelerator == "cpu"
    return pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision_for(cfg.precision, accelerator),
        max_epochs=cfg.epochs,
        limit_train_batches=_train_batches(cfg.limit_train_batches),
        enable_checkpointing=False,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=deterministic,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


def fit(
    cfg: TrainCfg,
    data: TrainData,
    callbacks: list[pl.Callback] | None = None,
    accelerator: str = "auto",
    init_state: dict[str, torch.Tensor] | None = None,
    resume_ckpt: str | None = None,
    select: tuple[str, str] | None = None,
) -> FitResult:
    """Train one configuration on train, select the best epoch on val, return metrics and weights.

    `callbacks` run after the internal history callback; in `on_validation_epoch_end` they see this
    epoch's train_loss, val_loss and the task's metrics (task.METRICS) in
    `trainer.callback_metrics`. If one of them sets `trainer.should_stop`, fit returns what was recorded
    so far. `select` is the (metric, mode) that picks the best epoch, by default the task's.

    `init_state` starts from pretrained weights (any layout models.weights reads; a load that would copy
    nothing but the head is refused; the first `cfg.freeze_blocks` blocks are then frozen). `resume_ckpt`,
    a Lightning checkpoint written by an earlier run of the same config, continues that run (a retried or
    restored trial). `accelerator` "auto" takes a GPU when there is one.
    """
    accelerator = "gpu" if accelerator == "auto" and torch.cuda.is_available() else (
        "cpu" if accelerator == "auto" else accelerator)
    spec = net_spec_for(cfg, data.task, data.channels, init_state)
    _check_fits_image(cfg, spec, data.image_size)
    started = time.perf_counter()
    pl.seed_everything(cfg.seed, workers=True, verbose=False)
    y = data.train.y
    module = LitModel(
        net=spec.to_dict(),
        lr=cfg.lr,
        optimizer=cfg.optimizer,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        epochs=cfg.epochs,
        loss_weights=loss_weights(data.task.kind, y, data.task.num_outputs),
        frozen_blocks=cfg.freeze_blocks if init_state is not None else 0,
        channels_last=accelerator == "gpu",
        regression_loss=cfg.regression_loss,
        target_stats=(float(np.mean(y)), float(np.std(y)) or 1.0) if data.task.kind == "regression" else (0.0, 1.0),
        ema_decay=cfg.ema_decay,
    )
    if init_state is not None:
        load_pretrained(module.net, spec, init_state, cfg.pretrained)
    train_loader, val_loader = make_loaders(data, cfg.batch_size, cfg.augment,
                                            loader_workers(cfg.num_workers, accelerator), cfg.seed)
    keys = ("train_loss", "val_loss", *METRICS[data.task.kind])
    history = _HistoryCallback(keys, *(select or (data.task.metric, data.task.mode)))
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    trainer = _make_trainer(cfg, [history, *(callbacks or [])], accelerator)
    try:
        with warnings.catch_warnings():
            # num_workers=0 is the deliberate default for small images; Lightning warns about it every run.
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            # Lightning 2.6 x torch 2.13 internals, raised once per fit; nothing a caller can act on.
            warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
            trainer.fit(module, train_loader, val_loader, ckpt_path=resume_ckpt)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)
    return _result(history, spec, time.perf_counter() - started)


def _result(history: _HistoryCallback, spec: NetSpec, seconds: float) -> FitResult:
    best = history.best or {k: math.nan for k in history.keys} | {"epoch": -1}
    metrics = {k: float(best[k]) for k in history.keys}
    metrics.update(epochs_run=float(len(history.history)), seconds=seconds)
    return FitResult(
        metrics=metrics,
        history=history.history,
        best_epoch=int(best["epoch"]),
        state_dict=history.best_state,
        net=spec.to_dict(),
        val_prob=history.val_prob,
    )
