"""The sweep logs through HTTP to a real `mlflow server`: parent run, nested trials, epoch metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from tests.integration.mlflow_server import mlflow_server

from medtune.config import ParamSpec, SearchCfg, TrainCfg
from medtune.data.datamodule import SplitArrays, TrainData
from medtune.data.store import write_images
from medtune.task import Task
from medtune.tracking.sweep_log import PARENT_TAG, SweepLogger
from medtune.tune.runner import Trainable, run_sweep

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.cluster]


def arrays(n: int, seed: int, folder: Path) -> SplitArrays:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.3, 0.05, (n, 1, 16, 16)).astype(np.float32)
    y = (np.arange(n) % 2).astype(np.int64)
    x[y == 1, 0, 6:10, 6:10] += 0.5
    ids = [f"{seed}-{i}" for i in range(n)]
    return SplitArrays(write_images(folder / f"images-{seed}.npy", np.clip(x, 0, 1)), y, ids, ids)


def test_sweep_nests_trials_under_a_parent_over_http(tmp_path: Path) -> None:
    data = TrainData(arrays(64, 0, tmp_path), arrays(32, 1, tmp_path), Task("binary", ("a", "b")))
    base = TrainCfg(batch_size=16, epochs=2, depth=2, width=8, augment=0.0, seed=3)
    search = SearchCfg(num_samples=3, max_concurrent_trials=2, grace_period=2,
                       space=(ParamSpec("lr", low=1e-3, high=3e-2, log=True),))
    with mlflow_server(tmp_path) as url:
        logger = SweepLogger(url, "over-http", str(tmp_path / "unused"), tags={"medtune.split_hash": "s"})
        result = run_sweep(Trainable(data, base, search), tmp_path / "ray" / "sweep", logger)
        logger.finish({"trials": 3.0}, [], {})

        client = MlflowClient(url)
        children = client.search_runs([logger.experiment_id],
                                      filter_string=f"tags.`{PARENT_TAG}` = '{result.parent_run_id}'")
        assert len(children) == 3
        for child in children:
            history = client.get_metric_history(child.info.run_id, "val_auroc")
            assert [m.step for m in history] == [1, 2]
            assert {"train_loss", "val_loss", "val_auroc"} <= set(child.data.metrics)
            assert child.data.tags["medtune.stop_reason"] == "completed"
        assert client.get_run(result.parent_run_id).info.status == "FINISHED"
