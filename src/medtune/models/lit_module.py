"""LightningModule around a plain ConvNet: class-weighted loss, AUROC/accuracy, the six optimisers.

The net's constructor arguments (a NetSpec dict) and every hyperparameter go through
`save_hyperparameters()`, so a checkpoint rebuilds itself without any config.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics import MeanMetric, Metric
from torchmetrics.classification import BinaryAccuracy, BinaryAUROC, MulticlassAccuracy, MulticlassAUROC

from medtune.choices import OPTIMIZERS
from medtune.models.inference import probs_from_logits
from medtune.models.nets import NetSpec, build_net, freeze_blocks


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


class LitClassifier(pl.LightningModule):
    """Trains `build_net(NetSpec(**net))`; binary heads use one logit and BCE, multi-class use CE.

    Epoch metrics: train_loss, val_loss, val_auroc, val_acc. All four are logged by the end of the
    validation epoch (train_loss from `on_validation_epoch_start`, once the epoch's training batches
    are done), so a callback reading `trainer.callback_metrics` in `on_validation_epoch_end` sees the
    current epoch's values.
    """

    def __init__(
        self,
        net: dict,
        lr: float,
        optimizer: str,
        momentum: float,
        weight_decay: float,
        epochs: int,
        class_weights: list[float] | None = None,
        frozen_blocks: int = 0,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        spec = NetSpec(**net)
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; one of {', '.join(OPTIMIZERS)}")
        self.spec = spec
        self.net = build_net(spec)
        if channels_last:  # NHWC: what tensor cores want for convolutions on GPUs
            self.net = self.net.to(memory_format=torch.channels_last)
        self.binary = spec.num_outputs == 1
        num_classes = 2 if self.binary else spec.num_outputs
        weights = torch.ones(num_classes) if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
        if len(weights) != num_classes:
            raise ValueError(f"class_weights has {len(weights)} entries for {num_classes} classes")
        # Buffers follow the module to the device; they are not part of the bare net's state_dict.
        if self.binary:
            self.register_buffer("pos_weight", weights[1:2] / weights[0])
        else:
            self.register_buffer("class_weight", weights)
        self.train_loss_mean = MeanMetric()
        self.val_auroc: Metric = BinaryAUROC() if self.binary else MulticlassAUROC(num_classes)
        self.val_acc: Metric = BinaryAccuracy() if self.binary else MulticlassAccuracy(num_classes, average="micro")
        self._val_probs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Normalise uint8 images to [0, 1] on the device: the loader moves a quarter of float32's bytes."""
        x, y = batch
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if self.hparams.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Class-weighted loss, so the minority class counts as much as the majority."""
        if self.binary:
            return nn.functional.binary_cross_entropy_with_logits(
                logits[:, 0], y.float(), pos_weight=self.pos_weight
            )
        return nn.functional.cross_entropy(logits, y, weight=self.class_weight)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self.loss(self(x), y)
        self.train_loss_mean.update(loss.detach(), weight=len(y))
        return loss

    def on_train_epoch_start(self) -> None:
        self.train_loss_mean.reset()
        # Lightning puts every module back in train mode each epoch; frozen blocks stay in eval so
        # their batch-norm statistics stay those of the initial weights.
        if self.hparams.frozen_blocks:
            freeze_blocks(self.net, self.spec, self.hparams.frozen_blocks)

    def on_validation_epoch_start(self) -> None:
        self._val_probs = []
        # Validation runs after the epoch's last training batch: log the finished epoch's train loss here
        # so it is in callback_metrics alongside the val metrics (Lightning's own epoch-end
        # aggregation of training metrics would only land after validation).
        if self.train_loss_mean.update_called:
            self.log("train_loss", self.train_loss_mean.compute(), on_epoch=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        probs = probs_from_logits(logits)
        self.val_auroc.update(probs, y)
        self.val_acc.update(probs, y)
        self._val_probs.append(probs.detach().cpu())
        self.log("val_loss", self.loss(logits, y), on_epoch=True, prog_bar=True, batch_size=len(y))
        self.log("val_auroc", self.val_auroc, on_epoch=True, prog_bar=True)
        self.log("val_acc", self.val_acc, on_epoch=True, prog_bar=True)

    def epoch_val_probs(self) -> np.ndarray:
        """This validation epoch's predictions in val-loader order (for thresholds and calibration)."""
        if not self._val_probs:
            return np.empty(0, dtype=np.float32)
        return torch.cat(self._val_probs).float().numpy()

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        opt = make_optimizer(hp.optimizer, self.parameters(), hp.lr, hp.momentum, hp.weight_decay)
        # The schedule spans the run's epochs, so a trial with more epochs anneals more slowly.
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, hp.epochs))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
