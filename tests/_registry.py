"""Test helper: a temporary MLflow SQLite store holding an untrained medtune model, registered as the
pipeline registers one (pyfunc files, signature example, tags)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
from mlflow.tracking import MlflowClient
from torch import nn

from medtune.models.nets import NetSpec, build_net
from medtune.tracking.pyfunc import predictions_frame, write_model_files
from medtune.tracking.registry import log_and_register
from medtune.tracking.sweep_log import ensure_experiment


def local_store(tmp_path: Path, experiment: str) -> tuple[str, MlflowClient, str]:
    """(tracking URI, client, experiment id) of a fresh SQLite store; also the process-global URI."""
    uri = f"sqlite:///{tmp_path / 'mlruns.db'}"
    mlflow.set_tracking_uri(uri)  # models:/ URIs and artifact downloads read the global URI
    client = MlflowClient(uri)
    return uri, client, ensure_experiment(client, experiment, str(tmp_path / "artifacts"))


def register_untrained(client: MlflowClient, experiment_id: str, name: str, files: Path, spec: NetSpec,
                       meta: dict, tags: dict[str, str]) -> tuple[str, nn.Module]:
    """Register an untrained net of `spec` under `name`; returns (version, net)."""
    net = build_net(spec)
    artifacts = write_model_files(files, spec.to_dict(), net.state_dict(), meta)
    size = meta["preprocess"]["image_size"]
    example = np.zeros((2, spec.in_channels, size, size), np.float32)
    out = predictions_frame(np.array([0.2, 0.7]), meta["task"], meta["threshold"])
    run = client.create_run(experiment_id)
    return log_and_register(name, run.info.run_id, artifacts, example, out, tags), net
