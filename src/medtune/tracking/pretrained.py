"""Pretrained weights for transfer learning, resolved on the driver (workers never talk to MLflow).

Sources: a local .pt file (a medtune checkpoint bundle or a bare state_dict) or an MLflow model URI
(`models:/name@champion`, `runs:/id/model`) of a model this pipeline registered. No hub downloads.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import torch

from medtune.errors import ConfigError
from medtune.tracking.pyfunc import WEIGHTS

MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")


def load_init_state(source: str | None, tracking_uri: str | None = None) -> dict[str, torch.Tensor] | None:
    """The state_dict named by `train.init_from`, loaded with weights_only (no pickled code runs); None
    when there is none (training starts from a seeded random init)."""
    if not source:
        return None
    if source.startswith(MLFLOW_SCHEMES):
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, tracking_uri=tracking_uri))
        except Exception as exc:  # MLflow raises several types for a bad URI; all mean the same here
            raise ConfigError(f"params.yaml: train.init_from: cannot fetch '{source}' "
                              f"({type(exc).__name__})") from None
        found = sorted(local.rglob(WEIGHTS))
        if not found:
            raise ConfigError(f"params.yaml: train.init_from: '{source}' is not a medtune model "
                              f"(no {WEIGHTS} inside)")
        path = found[0]
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"params.yaml: train.init_from: file '{source}' does not exist")
    try:
        loaded = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:
        raise ConfigError(f"params.yaml: train.init_from: '{source}' is not a torch weights file "
                          f"({type(exc).__name__})") from None
    state = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"params.yaml: train.init_from: '{source}' holds no state_dict")
    return state
