"""Model registry: log the best trial as a pyfunc, register it, and move aliases through a gate.

Aliases (`champion`, `challenger`), never the deprecated stages. A registered-model tag keeps the
history of champion moves, because an alias alone forgets where it pointed before.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from medtune.tracking.pyfunc import MedtuneClassifier

CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "medtune.champion_history"
# The medtune package travels inside the model (code_paths), so a served model needs only these.
PIP_REQUIREMENTS = ["torch==2.13.0", "numpy", "pandas", "pytorch-lightning==2.6.6", "torchmetrics==1.9.0"]
CODE_DIR = str(Path(__file__).resolve().parents[1])


@dataclass
class Promotion:
    model_name: str
    version: str
    promoted: bool
    reason: str
    val_metric: str
    val_value: float
    previous_champion: str | None
    previous_value: float | None


def log_and_register(model_name: str, run_id: str, artifacts: dict[str, str], example: np.ndarray,
                     example_output: Any, tags: dict[str, str]) -> str:
    """Log the pyfunc under `run_id`, register a new version with lineage tags; returns the version."""
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=MedtuneClassifier(), artifacts=artifacts,
            signature=infer_signature(example, example_output), input_example=example,
            pip_requirements=PIP_REQUIREMENTS, code_paths=[CODE_DIR], registered_model_name=model_name)
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(model_name, version, key, str(value))
    return version


def alias_version(client: MlflowClient, model_name: str, alias: str) -> Any | None:
    """The model version behind an alias, or None when the alias (or the model) does not exist."""
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def decide(new_value: float, new_split: str, champion: Any | None, metric: str, min_delta: float,
           mode: str = "max") -> tuple[bool, str]:
    """Champion/challenger gate on validation: beat the champion on the same split by min_delta."""
    if champion is None:
        return True, "no champion yet"
    if champion.tags.get("medtune.split_hash") != new_split:
        return True, ("champion was validated on a different split; values are not comparable, "
                      "so the newest model is promoted")
    old = float(champion.tags.get(f"medtune.val_{metric}", "nan"))
    gain = (new_value - old) if mode == "max" else (old - new_value)
    if np.isnan(old) or gain >= min_delta:
        return True, f"val_{metric} {new_value:.4f} vs champion v{champion.version} {old:.4f} (>= {min_delta})"
    return False, (f"val_{metric} {new_value:.4f} does not beat champion v{champion.version} {old:.4f} "
                   f"by min_delta {min_delta}; champion stays")


def promote(model_name: str, version: str, metric: str, value: float, split_hash: str,
            min_delta: float, mode: str = "max") -> Promotion:
    """Make `version` the challenger, then the champion if it passes the gate; record the move."""
    client = MlflowClient()
    champion = alias_version(client, model_name, CHAMPION)
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    promoted, reason = decide(value, split_hash, champion, metric, min_delta, mode)
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version)
        _append_history(client, model_name, version, reason)
    client.set_model_version_tag(model_name, version, "medtune.promotion", reason)
    return Promotion(model_name, version, promoted, reason, metric, value,
                     str(champion.version) if champion else None,
                     float(champion.tags.get(f"medtune.val_{metric}", "nan")) if champion else None)


def _append_history(client: MlflowClient, model_name: str, version: str, reason: str) -> None:
    tags = client.get_registered_model(model_name).tags
    history = json.loads(tags.get(HISTORY_TAG, "[]"))
    history.append({"version": version, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "reason": reason[:200]})
    blob = json.dumps(history[-20:])  # MLflow tag values are bounded; keep the latest moves
    client.set_registered_model_tag(model_name, HISTORY_TAG, blob)


def write_promotion(promotion: Promotion, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(promotion), indent=1) + "\n")
