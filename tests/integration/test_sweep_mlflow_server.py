"""The sweep logs through HTTP to a real `mlflow server`: parent run, nested trials, epoch metrics."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from tests._data import learnable_data
from tests.integration.mlflow_server import mlflow_server

from medtune.config import ParamSpec, SearchCfg, TrainCfg
from medtune.tracking.sweep_log import PARENT_TAG, SweepLogger
from medtune.tune.runner import Trainable, run_sweep

pytestmark = [pytest.mark.slow, pytest.mark.ray, pytest.mark.cluster]


def test_sweep_nests_trials_under_a_parent_over_http(tmp_path: Path) -> None:
    data = learnable_data(tmp_path, 64, 32)
    base = TrainCfg(batch_size=16, epochs=2, depth=2, width=8, augment=0.0, seed=3)
    search = SearchCfg(num_samples=3, max_concurrent_trials=2, grace_period=10_000, min_steps=0,
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
