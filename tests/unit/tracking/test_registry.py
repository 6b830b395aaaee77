"""Registry against a real MLflow SQLite store: register, gate, aliases, lineage, weights-only load."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from medtune.models.nets import NetSpec, build_net
from medtune.tracking.pyfunc import predictions_frame, write_model_files
from medtune.tracking.registry import CHAMPION, CHALLENGER, HISTORY_TAG, log_and_register, promote
from medtune.tracking.sweep_log import ensure_experiment

NAME = "unit-model"


@pytest.fixture
def store(tmp_path: Path) -> MlflowClient:
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(uri)
    ensure_experiment(client, "unit", str(tmp_path / "artifacts"))
    mlflow.set_experiment("unit")
    return client


def register(client: MlflowClient, tmp_path: Path, val_auroc: float, split: str = "s1") -> str:
    spec = NetSpec(depth=1, width=4)
    net = build_net(spec)
    meta = {"preprocess": {"image_size": 8}, "class_names": ["normal", "abnormal"], "threshold": 0.5}
    artifacts = write_model_files(tmp_path / f"m{val_auroc}", spec.to_dict(), net.state_dict(), meta)
    run = client.create_run(client.get_experiment_by_name("unit").experiment_id)
    example = np.zeros((2, 1, 8, 8), np.float32)
    out = predictions_frame(np.array([0.2, 0.7]), meta["class_names"], 0.5)
    tags = {"medtune.split_hash": split, "medtune.val_auroc": str(val_auroc), "medtune.git_commit": "abc"}
    return log_and_register(NAME, run.info.run_id, artifacts, example, out, tags)


def test_gate_keeps_champion_when_worse_and_promotes_when_better(store: MlflowClient, tmp_path: Path) -> None:
    v1 = register(store, tmp_path, 0.90)
    first = promote(NAME, v1, "auroc", 0.90, "s1", min_delta=0.01)
    assert first.promoted and first.reason == "no champion yet"

    v2 = register(store, tmp_path, 0.905)
    second = promote(NAME, v2, "auroc", 0.905, "s1", min_delta=0.01)
    assert not second.promoted and "champion stays" in second.reason
    assert str(store.get_model_version_by_alias(NAME, CHAMPION).version) == v1
    assert str(store.get_model_version_by_alias(NAME, CHALLENGER).version) == v2

    v3 = register(store, tmp_path, 0.95)
    assert promote(NAME, v3, "auroc", 0.95, "s1", min_delta=0.01).promoted
    assert str(store.get_model_version_by_alias(NAME, CHAMPION).version) == v3
    history = store.get_registered_model(NAME).tags[HISTORY_TAG]
    assert f'"version": "{v1}"' in history and f'"version": "{v3}"' in history


def test_different_split_is_promoted_and_says_why(store: MlflowClient, tmp_path: Path) -> None:
    promote(NAME, register(store, tmp_path, 0.99, split="old"), "auroc", 0.99, "old", 0.0)
    decision = promote(NAME, register(store, tmp_path, 0.5, split="new"), "auroc", 0.5, "new", 0.0)
    assert decision.promoted and "different split" in decision.reason


def test_champion_loads_by_alias_and_predicts(store: MlflowClient, tmp_path: Path) -> None:
    version = register(store, tmp_path, 0.9)
    promote(NAME, version, "auroc", 0.9, "s1", 0.0)
    tags = store.get_model_version(NAME, version).tags
    assert tags["medtune.git_commit"] == "abc" and tags["medtune.split_hash"] == "s1"
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@{CHAMPION}")
    frame = model.predict(np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32))
    assert list(frame.columns) == ["prob_normal", "prob_abnormal", "predicted"]
    assert np.allclose(frame["prob_normal"] + frame["prob_abnormal"], 1.0)
