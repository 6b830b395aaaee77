"""fit() end to end on a tiny learnable cohort written as real images.npy / index.parquet / splits files."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from medtune.config import TrainCfg
from medtune.data.datamodule import TrainData, load_train_data
from medtune.errors import ConfigError
from medtune.models.inference import load_net, predict_proba
from medtune.models.nets import net_spec_for
from medtune.task import Task, write_task
from medtune.train import FitResult, fit

SIZE = 16


def write_square_cohort(root: Path, n: int = 96, seed: int = 0, k: int = 4) -> tuple[Path, dict]:
    """Noise images with k*k bright pixels: in a square for label 1, scattered for label 0.

    Both classes have the same mean intensity, so only a spatial pattern separates them. Splits 50/25/25.
    """
    rng = np.random.default_rng(seed)
    y = np.array([i % 2 for i in range(n)], dtype=np.int64)
    x = rng.uniform(0.0, 0.5, size=(n, 1, SIZE, SIZE)).astype(np.float32)
    for i in range(n):
        if y[i]:
            r, c = rng.integers(0, SIZE - k, size=2)
            x[i, 0, r : r + k, c : c + k] = 0.9
        else:
            x[i, 0].flat[rng.choice(SIZE * SIZE, size=k * k, replace=False)] = 0.9
    root.mkdir(parents=True, exist_ok=True)
    np.save(root / "images.npy", x)
    ids = [f"s{i:03d}" for i in range(n)]
    pd.DataFrame({
        "row": np.arange(n), "sample_id": ids, "patient_key": [f"p{i:03d}" for i in range(n)],
        "label": np.where(y == 1, "square", "plain"), "target": y,
    }).to_parquet(root / "index.parquet")
    write_task(Task("binary", ("plain", "square")), root / "task.json")
    half, quarter = n // 2, n // 4
    splits = {"train": ids[:half], "val": ids[half : half + quarter], "test": ids[half + quarter :]}
    return root, splits


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> TrainData:
    torch.set_num_threads(1)
    root, splits = write_square_cohort(tmp_path_factory.mktemp("processed"))
    return load_train_data(root, splits)


FAST = TrainCfg(lr=3e-3, batch_size=16, epochs=1, depth=2, width=8, augment=0.0, seed=7)


@pytest.fixture(scope="module")
def trained(data: TrainData) -> FitResult:
    """A few epochs on the square signal; shared by the behaviour and round-trip tests."""
    return fit(dataclasses.replace(FAST, epochs=4), data, accelerator="cpu")


def test_fit_records_one_history_entry_per_epoch(data: TrainData) -> None:
    result = fit(dataclasses.replace(FAST, epochs=2), data, accelerator="cpu")
    assert [row["epoch"] for row in result.history] == [0, 1]
    assert set(result.history[0]) == {"epoch", "train_loss", "val_loss", "val_auroc", "val_acc"}
    assert result.metrics["epochs_run"] == 2
    assert all(math.isfinite(row["train_loss"]) for row in result.history)


def test_model_learns_the_bright_square(trained: FitResult) -> None:
    assert trained.metrics["val_auroc"] > 0.9
    assert trained.history[-1]["train_loss"] < trained.history[0]["train_loss"]
    best = trained.history[trained.best_epoch]
    assert trained.metrics["val_auroc"] == best["val_auroc"] == max(r["val_auroc"] for r in trained.history)


def test_val_prob_belongs_to_the_best_epoch(trained: FitResult, data: TrainData) -> None:
    assert trained.val_prob.shape == (len(data.val),)
    acc = float(((trained.val_prob >= 0.5) == data.val.y).mean())
    assert acc == pytest.approx(trained.metrics["val_acc"], abs=1e-6)


class _Recorder(pl.Callback):
    """Reads callback_metrics the way the tune runner's Ray reporter does."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.seen: list[dict[str, float]] = []
        self.stop_after = stop_after

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        m = trainer.callback_metrics
        self.seen.append({k: float(m[k]) for k in ("val_auroc", "val_loss", "train_loss")})
        if self.stop_after is not None and len(self.seen) >= self.stop_after:
            trainer.should_stop = True


def test_callback_sees_each_epochs_current_metrics_in_order(data: TrainData) -> None:
    recorder = _Recorder()
    result = fit(dataclasses.replace(FAST, epochs=3), data, callbacks=[recorder], accelerator="cpu")
    assert len(recorder.seen) == 3
    for seen, row in zip(recorder.seen, result.history):
        assert seen == {k: pytest.approx(row[k]) for k in seen}
    # train_loss must be this epoch's, not the previous one's
    assert len({s["train_loss"] for s in recorder.seen}) == 3


def test_early_stop_from_a_callback_returns_what_was_run(data: TrainData) -> None:
    result = fit(dataclasses.replace(FAST, epochs=5), data, callbacks=[_Recorder(stop_after=2)], accelerator="cpu")
    assert result.metrics["epochs_run"] == 2
    assert result.state_dict


def test_same_seed_gives_same_metrics(data: TrainData) -> None:
    cfg = dataclasses.replace(FAST, augment=0.5)
    a, b = fit(cfg, data, accelerator="cpu"), fit(cfg, data, accelerator="cpu")
    assert a.history == b.history
    np.testing.assert_array_equal(a.val_prob, b.val_prob)


def test_predict_proba_and_load_net_round_trip(trained: FitResult, data: TrainData) -> None:
    net = load_net(trained.net, trained.state_dict)
    probs = predict_proba(net, data.val.x, batch_size=7)
    assert probs.shape == (len(data.val),)
    assert ((probs >= 0) & (probs <= 1)).all()
    # the best epoch's val predictions come back exactly from the saved weights
    np.testing.assert_allclose(probs, trained.val_prob, rtol=0, atol=1e-6)
    again = predict_proba(load_net(trained.net, trained.state_dict), data.val.x, batch_size=7)
    np.testing.assert_array_equal(probs, again)


def test_net_spec_for_gives_each_task_its_outputs() -> None:
    assert net_spec_for(TrainCfg(), Task("binary", ("a", "b"))).num_outputs == 1
    spec = net_spec_for(TrainCfg(depth=2), Task("multiclass", tuple("abcde")), in_channels=3)
    assert (spec.num_outputs, spec.task, spec.in_channels) == (5, "multiclass", 3)
    assert net_spec_for(TrainCfg(), Task("multilabel", ("x", "y"))).num_outputs == 2
    assert net_spec_for(TrainCfg(), Task("regression", ("r",))).num_outputs == 1


def test_fit_refuses_a_net_deeper_than_the_image(data: TrainData) -> None:
    with pytest.raises(ConfigError, match="too small for convnet.*ConvNet depth 5"):
        fit(dataclasses.replace(FAST, depth=5), data, accelerator="cpu")


def test_transfer_learning_freezes_the_first_blocks(trained: FitResult, data: TrainData) -> None:
    cfg = dataclasses.replace(FAST, epochs=1, lr=1e-2, freeze_blocks=1)
    tuned = fit(cfg, data, accelerator="cpu", init_state=trained.state_dict)
    frozen = [k for k in trained.state_dict if k.startswith("body.features.0.")]
    trainable = [k for k in trained.state_dict if k.startswith("body.features.1.") and k.endswith("weight")]
    assert frozen and trainable
    for key in frozen:  # weights and batch-norm statistics of block 0 are the pretrained ones
        assert torch.equal(tuned.state_dict[key], trained.state_dict[key]), key
    assert any(not torch.equal(tuned.state_dict[k], trained.state_dict[k]) for k in trainable)


def test_fit_resumes_from_a_lightning_checkpoint(data: TrainData, tmp_path: Path) -> None:
    class SaveEachEpoch(pl.Callback):
        def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
            trainer.save_checkpoint(tmp_path / f"epoch{trainer.current_epoch}.ckpt")

    fit(dataclasses.replace(FAST, epochs=1), data, callbacks=[SaveEachEpoch()], accelerator="cpu")
    resumed = fit(dataclasses.replace(FAST, epochs=3), data, accelerator="cpu",
                  resume_ckpt=str(tmp_path / "epoch0.ckpt"))
    assert [row["epoch"] for row in resumed.history] == [1, 2]  # epoch 0 is not trained again


def test_residual_blocks_train(data: TrainData) -> None:
    result = fit(dataclasses.replace(FAST, epochs=1, residual=True), data, accelerator="cpu")
    assert any(".skip." in k for k in result.state_dict)
    assert math.isfinite(result.metrics["val_loss"])
