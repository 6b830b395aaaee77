"""LightningModule around a plain network: the task's loss and metrics, the six optimisers, cosine LR, and
the moving average of the weights that validation sees (models.ema).

The net's constructor arguments (a NetSpec dict) and every hyperparameter go through
`save_hyperparameters()`, so a checkpoint rebuilds itself without any config.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torchmetrics import MeanMetric

from medtune.choices import OPTIMIZERS
from medtune.models.ema import weight_ema
from medtune.models.heads import metric_target, task_loss, task_metrics
from medtune.models.inference import outputs_from_logits
from medtune.models.nets import NetSpec, OutputScale, build_net, freeze_blocks
from medtune.task import METRICS


def make_optimizer(
    name: str, params: Any, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    """One of the six searchable optimisers; weight decay is decoupled only for adamw."""
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd_momentum":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; one of {', '.join(OPTIMIZERS)}")


class LitModel(pl.LightningModule):
    """Trains `build_net(NetSpec(**net))` on the task the spec names (models.heads).

    Epoch metrics: train_loss, val_loss and the task's METRICS. All are logged by the end of the
    validation epoch (train_loss from `on_validation_epoch_start`, once the epoch's training batches are
    done), so a callback reading `trainer.callback_metrics` in `on_validation_epoch_end` sees the current
    epoch's values.
    """

    def __init__(
        self,
        net: dict,
        lr: float,
        optimizer: str,
        momentum: float,
        weight_decay: float,
        epochs: int,
        loss_weights: list[float] | None = None,
        frozen_blocks: int = 0,
        channels_last: bool = False,
        regression_loss: str = "mse",
        target_stats: tuple[float, float] = (0.0, 1.0),
        ema_decay: float = 0.0,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; one of {', '.join(OPTIMIZERS)}")
        self.spec = NetSpec(**net)
        self.net = build_net(self.spec)
        if isinstance(self.net.out, OutputScale):  # regression: learn in standard units of the train target
            self.net.out = OutputScale(*target_stats)
        if channels_last:  # NHWC: what tensor cores want for convolutions on GPUs
            self.net = self.net.to(memory_format=torch.channels_last)
        weights = None if loss_weights is None else torch.tensor(loss_weights, dtype=torch.float32)
        if weights is not None and len(weights) != self.spec.num_outputs:
            raise ValueError(f"loss_weights has {len(weights)} entries for {self.spec.num_outputs} outputs")
        # A buffer follows the module to the device and is not part of the bare net's state_dict.
        self.register_buffer("loss_weight", weights, persistent=False)
        # A submodule, so Lightning's checkpoint carries it and a resumed trial continues the same average.
        self.ema = weight_ema(self.net, ema_decay) if ema_decay else None
        self.train_loss_mean = MeanMetric()
        self.val_metrics = task_metrics(self.spec.task, self.spec.num_outputs)
        self._val_outputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def evaluated_net(self) -> torch.nn.Module:
        """The weights validation scores and callers keep: the moving average when there is one."""
        return self.net if self.ema is None else self.ema.module

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Normalise uint8 images to [0, 1] on the device: the loader moves a quarter of float32's bytes."""
        x, y = batch
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def loss(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        scale = self.net.out.std if isinstance(self.net.out, OutputScale) else None
        return task_loss(self.spec.task, outputs, y, self.loss_weight, self.hparams.regression_loss, scale)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        self.train_loss_mean.update(loss.detach(), weight=len(y))
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.net)

    def on_train_epoch_start(self) -> None:
        self.train_loss_mean.reset()
        # Lightning puts every module back in train mode each epoch; frozen blocks stay in eval so
        # their batch-norm statistics stay those of the initial weights.
        if self.hparams.frozen_blocks:
            freeze_blocks(self.net, self.spec, self.hparams.frozen_blocks)

    def on_validation_epoch_start(self) -> None:
        self._val_outputs = []
        # Validation runs after the epoch's last training batch: log the finished epoch's train loss here
        # so it is in callback_metrics alongside the val metrics (Lightning's own epoch-end
        # aggregation of training metrics would only land after validation).
        if self.train_loss_mean.update_called:
            self.log("train_loss", self.train_loss_mean.compute(), on_epoch=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.evaluated_net()(x)
        outputs = outputs_from_logits(logits, self.spec.task)
        target = metric_target(self.spec.task, y)
        for name in METRICS[self.spec.task]:
            self.val_metrics[name].update(outputs, target)
            self.log(name, self.val_metrics[name], on_epoch=True)
        self._val_outputs.append(outputs.detach().float().cpu())
        self.log("val_loss", self.loss(logits, y), on_epoch=True, batch_size=len(y))

    def epoch_val_outputs(self) -> np.ndarray:
        """This validation epoch's predictions in val-loader order (for thresholds and calibration)."""
        if not self._val_outputs:
            return np.empty(0, dtype=np.float32)
        return torch.cat(self._val_outputs).numpy()

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        opt = make_optimizer(hp.optimizer, self.parameters(), hp.lr, hp.momentum, hp.weight_decay)
        # The schedule spans the run's epochs, so a trial with more epochs anneals more slowly.
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, hp.epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
