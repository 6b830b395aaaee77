"""One trial on a Ray worker: the sampled config over the train defaults, a plain `fit()`, a report per epoch.

The report carries this epoch's metrics, the best so far, the optimizer steps taken (ASHA's clock) and
a checkpoint: the bare weights (for promote) and the Lightning state (to resume a retried or restored trial).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import albumentations  # noqa: F401  preloaded with the worker (transforms.py imports it on first use)
import pytorch_lightning as pl
import ray
import torch
from ray import tune

from medtune.config import TrainCfg
from medtune.data.datamodule import TrainData
from medtune.models.lit_module import LitModel
from medtune.train import fit
from medtune.tune.plan import trial_epochs
from medtune.tune.restore import CHECKPOINT_FILE, PROGRESS_FILE, TRAINER_FILE


class ReportEachEpoch(pl.Callback):
    """Report every epoch to Tune (this epoch's metrics, the best so far, steps taken) with a checkpoint."""

    def __init__(self, metric: str, mode: str, best: float | None = None, planned_epochs: int = 0) -> None:
        self.metric, self.sign, self.best = metric, (1.0 if mode == "max" else -1.0), best
        self.planned_epochs = planned_epochs

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        # fit() documents that this epoch's train and val metrics are in callback_metrics here.
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        metrics["epoch"] = trainer.current_epoch + 1
        metrics["steps"] = int(trainer.global_step)
        metrics["planned_epochs"] = self.planned_epochs
        current = metrics.get(self.metric)
        if current is not None and (self.best is None or self.sign * current > self.sign * self.best):
            self.best = current
        metrics[f"best_{self.metric}"] = self.best if self.best is not None else float("nan")
        metrics["node_id"] = ray.get_runtime_context().get_node_id()  # where this epoch ran (retries move)
        with tempfile.TemporaryDirectory() as tmp:
            assert isinstance(module, LitModel)
            state = {k: v.detach().cpu() for k, v in module.evaluated_net().state_dict().items()}
            torch.save({"net": dict(module.hparams.net), "state_dict": state, "epoch": metrics["epoch"]},
                       Path(tmp) / CHECKPOINT_FILE)
            trainer.save_checkpoint(Path(tmp) / TRAINER_FILE)
            (Path(tmp) / PROGRESS_FILE).write_text(json.dumps({"best": self.best}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def train_trial(config: dict[str, Any], data: TrainData, base: TrainCfg, metric: str, mode: str,
                threads: int, accelerator: str, init_states: dict[str, dict], min_steps: int = 0) -> None:
    """One trial: the sampled values override the train defaults (epochs raised to `min_steps` optimizer
    steps), then a plain `fit()` - continued from the trial's last checkpoint when Tune retries or restores it."""
    torch.set_num_threads(threads)
    cfg = dataclasses.replace(base, **config)
    cfg = dataclasses.replace(cfg, epochs=trial_epochs(cfg.epochs, cfg.batch_size, len(data.train), min_steps))
    checkpoint, resume, best = tune.get_checkpoint(), None, None
    with tempfile.TemporaryDirectory() as local:
        if checkpoint is not None:
            with checkpoint.as_directory() as ckpt_dir:
                resume = shutil.copy(Path(ckpt_dir) / TRAINER_FILE, Path(local) / TRAINER_FILE)
                best = json.loads((Path(ckpt_dir) / PROGRESS_FILE).read_text())["best"]
        fit(cfg, data, callbacks=[ReportEachEpoch(metric, mode, best, cfg.epochs)], accelerator=accelerator,
            init_state=init_states.get(cfg.arch), resume_ckpt=resume)

