"""Registry against a real MLflow SQLite store: register, gate, aliases, history, weights-only load."""

from __future__ import annotations

import json
import math
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from medtune.config import parse_params
from medtune.errors import ConfigError, DataError
from medtune.models.nets import NetSpec, build_net
from medtune.tracking.pyfunc import FORMAT, predictions_frame, write_model_files
from medtune.tracking.registry import (
    CHALLENGER,
    CHAMPION,
    FORMAT_TAG,
    alias_history,
    champion_version,
    decide,
    log_and_register,
    promote,
    write_promotion,
)
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


def register(client: MlflowClient, tmp_path: Path, val_auroc: float, split: str = "s1", seed: int = 0,
             **inference: object) -> str:
    """Register a tiny untrained net the way the promote stage does (`inference`: calibration, tta)."""
    torch.manual_seed(seed)
    spec = NetSpec(depth=1, width=4)
    net = build_net(spec)
    meta = {"preprocess": {"image_size": 8, "window": "header", "percentiles": [0.5, 99.5]},
            "task": {"kind": "binary", "names": ["normal", "abnormal"]}, "threshold": 0.5, **inference}
    artifacts = write_model_files(tmp_path / f"m{val_auroc}-{seed}", spec.to_dict(), net.state_dict(), meta)
    run = client.create_run(client.get_experiment_by_name("unit").experiment_id)
    example = np.zeros((2, 1, 8, 8), np.float32)
    out = predictions_frame(np.array([0.2, 0.7]), meta["task"], 0.5)
    tags = {"medtune.split_hash": split, "medtune.val_auroc": str(val_auroc), "medtune.git_commit": "abc"}
    return log_and_register(NAME, run.info.run_id, artifacts, example, out, tags, description="unit")


def champion(client: MlflowClient) -> str:
    return str(client.get_model_version_by_alias(NAME, CHAMPION).version)


def test_gate_keeps_champion_when_worse_and_promotes_when_better(store: MlflowClient, tmp_path: Path) -> None:
    v1 = register(store, tmp_path, 0.90)
    with pytest.raises(DataError, match="no 'champion' alias .* run the promote stage first"):
        champion_version(store, NAME)
    first = promote(NAME, v1, "auroc", 0.90, "s1", min_delta=0.01)
    assert first.promoted and first.reason.startswith("no champion yet")
    assert first.summary().startswith(f"{NAME} v{v1} -> champion (no champion yet")

    v2 = register(store, tmp_path, 0.905)
    second = promote(NAME, v2, "auroc", 0.905, "s1", min_delta=0.01)
    assert not second.promoted and "champion stays" in second.reason
    assert (second.previous_champion, second.champion) == (v1, v1)
    assert champion(store) == v1 == str(champion_version(store, NAME).version)
    assert f"v{v2} -> challenger only, champion stays v{v1}" in second.summary()
    assert second.summary().endswith("val auroc=0.9050")
    assert str(store.get_model_version_by_alias(NAME, CHALLENGER).version) == v2
    assert store.get_model_version(NAME, v2).tags["medtune.gate"] == "challenger"

    v3 = register(store, tmp_path, 0.95)
    third = promote(NAME, v3, "auroc", 0.95, "s1", min_delta=0.01)
    assert third.promoted and "vs champion v1 0.9000" in third.reason and "becomes champion" in third.reason
    assert champion(store) == v3

    # Aliases forget; the history and the version tags remember every move.
    moves = [(m["alias"], m["version"], m["from"]) for m in alias_history(store, NAME)]
    assert moves == [(CHALLENGER, v1, None), (CHAMPION, v1, None), (CHALLENGER, v2, v1),
                     (CHALLENGER, v3, v2), (CHAMPION, v3, v1)]
    old = store.get_model_version(NAME, v1).tags
    assert old["medtune.replaced_by"] == v3 and "medtune.champion_until" in old
    assert "medtune.champion_since" in store.get_model_version(NAME, v3).tags


def test_new_split_follows_the_policy_and_says_so(store: MlflowClient, tmp_path: Path) -> None:
    v1 = register(store, tmp_path, 0.99, split="old")
    promote(NAME, v1, "auroc", 0.99, "old", 0.0)
    kept = promote(NAME, register(store, tmp_path, 0.5, split="new"), "auroc", 0.5, "new", 0.0,
                   on_new_split="keep")
    assert not kept.promoted and "not comparable" in kept.reason and "on_new_split=keep" in kept.reason
    assert champion(store) == v1
    v3 = register(store, tmp_path, 0.5, split="new", seed=1)
    moved = promote(NAME, v3, "auroc", 0.5, "new", 0.0, on_new_split="promote")
    assert moved.promoted and "on_new_split=promote" in moved.reason
    assert champion(store) == v3


def test_a_nan_metric_never_displaces_a_champion(store: MlflowClient, tmp_path: Path) -> None:
    v1 = register(store, tmp_path, 0.7)
    promote(NAME, v1, "auroc", 0.7, "s1", 0.0)
    current = store.get_model_version_by_alias(NAME, CHAMPION)
    promoted, reason = decide(math.nan, "s1", current, "auroc", 0.0)
    assert not promoted and "NaN" in reason
    assert decide(0.6, "s1", current, "auroc", 0.0, mode="min")[0]  # lower is better in min mode


def test_version_is_tagged_loads_by_alias_and_exposes_the_net(store: MlflowClient, tmp_path: Path) -> None:
    version = register(store, tmp_path, 0.9)
    decision = promote(NAME, version, "auroc", 0.9, "s1", 0.0)
    mv = store.get_model_version(NAME, version)
    assert mv.tags["medtune.git_commit"] == "abc" and mv.tags["medtune.split_hash"] == "s1"
    assert mv.tags[FORMAT_TAG] == FORMAT and mv.description == "unit"
    model = mlflow.pyfunc.load_model(f"models:/{NAME}@{CHAMPION}")
    x = np.random.default_rng(0).random((3, 1, 8, 8), dtype=np.float32)
    frame = model.predict(x)
    assert list(frame.columns) == ["prob_normal", "prob_abnormal", "predicted"]
    assert np.allclose(frame["prob_normal"] + frame["prob_abnormal"], 1.0)
    net = model.unwrap_python_model().net
    assert isinstance(net, torch.nn.Module)
    logit = net(torch.from_numpy(x)).detach().numpy().ravel()
    assert np.allclose(frame["prob_abnormal"], 1 / (1 + np.exp(-logit)), atol=1e-6)

    write_promotion(decision, tmp_path / "promotion.json")
    written = json.loads((tmp_path / "promotion.json").read_text())
    assert written["champion"] == version and written["on_new_split"] == "promote"


def test_the_registered_model_applies_its_calibration_and_tta(store: MlflowClient, tmp_path: Path) -> None:
    calibration = {"method": "platt", "scale": [0.5], "bias": [1.0]}
    version = register(store, tmp_path, 0.9, calibration=calibration, tta=True)
    model = mlflow.pyfunc.load_model(f"models:/{NAME}/{version}")
    x = np.random.default_rng(1).random((4, 1, 8, 8), dtype=np.float32)
    net = model.unwrap_python_model().net
    with torch.no_grad():
        logits = [net(torch.from_numpy(v.copy())).numpy().ravel() for v in (x, x[..., ::-1])]
    raw = np.mean([1 / (1 + np.exp(-z)) for z in logits], axis=0)
    expected = 1 / (1 + np.exp(-(0.5 * np.log(raw / (1 - raw)) + 1.0)))
    np.testing.assert_allclose(model.unwrap_python_model().raw_outputs(x), raw, atol=1e-6)
    np.testing.assert_allclose(model.predict(x)["prob_abnormal"], expected, atol=1e-5)


def test_on_new_split_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"registry.on_new_split: 'maybe' is not one of promote, keep"):
        parse_params({"registry": {"on_new_split": "maybe"}})
    with pytest.raises(ConfigError, match=r"registry.min_delta: -0.1 must be >= 0"):
        parse_params({"registry": {"min_delta": -0.1}})
