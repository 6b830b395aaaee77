"""Model registry: log the best trial as a pyfunc, register it, move aliases through a gate, load it back.

Aliases (`champion`, `challenger`), never the deprecated stages. An alias forgets where it pointed
before, so every move is also written down three ways: a JSON log on the registered model (latest
moves), tags on the versions involved (`medtune.champion_since`, `medtune.replaced_by`, ...), and the
promote run that made the decision (reports/promotion.json as its artifact).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from medtune.config import RegistryCfg
from medtune.errors import DataError, MedtuneError
from medtune.jsonio import write_json
from medtune.models.inference import predict_proba
from medtune.task import Task
from medtune.tracking.pyfunc import FORMAT, MedtuneModel, predictions_frame

CHAMPION, CHALLENGER = "champion", "challenger"
HISTORY_TAG = "medtune.alias_history"
FORMAT_TAG = "medtune.format"
# Registered-model tag values are VARCHAR(5000) on a Postgres-backed server: keep the log below that.
_HISTORY_LIMIT = 4800
# The medtune package travels inside the model (code_paths); inference imports only its nets module.
PIP_REQUIREMENTS = ["torch==2.13.0", "numpy", "pandas"]
CODE_DIR = str(Path(__file__).resolve().parents[1])


@dataclass
class Promotion:
    """What the gate decided and why; written to reports/promotion.json."""

    model_name: str
    version: str
    promoted: bool
    reason: str
    val_metric: str
    val_value: float
    split_hash: str
    min_delta: float
    on_new_split: str
    previous_champion: str | None
    previous_value: float | None
    champion: str
    at: str = field(default_factory=lambda: _now())
    lineage: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for the stage's output: which version, what it became and why."""
        verdict = "champion" if self.promoted else f"challenger only, champion stays v{self.champion}"
        return (f"{self.model_name} v{self.version} -> {verdict} ({self.reason}); "
                f"val {self.val_metric}={self.val_value:.4f}")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def log_and_register(model_name: str, run_id: str, artifacts: dict[str, str], example: Any,
                     example_output: Any, tags: dict[str, str], description: str = "") -> str:
    """Log the pyfunc under `run_id`, register a new version with lineage tags; returns the version."""
    with mlflow.start_run(run_id=run_id):
        info = mlflow.pyfunc.log_model(
            name="model", python_model=MedtuneModel(), artifacts=artifacts,
            signature=infer_signature(example, example_output), input_example=example,
            pip_requirements=PIP_REQUIREMENTS, code_paths=[CODE_DIR], registered_model_name=model_name)
    version = str(info.registered_model_version)
    client = MlflowClient()
    for key, value in {**tags, FORMAT_TAG: FORMAT, "medtune.kind": "model"}.items():
        client.set_model_version_tag(model_name, version, key, str(value))
    if description:
        client.update_model_version(model_name, version, description=description)
    return version


def alias_version(client: MlflowClient, model_name: str, alias: str) -> Any | None:
    """The model version behind an alias, or None when the alias (or the model) does not exist."""
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def champion_version(client: MlflowClient, model_name: str) -> Any:
    """The version the champion alias points at now; DataError when promote never ran."""
    champion = alias_version(client, model_name, CHAMPION)
    if champion is None:
        raise DataError(f"no '{CHAMPION}' alias on registered model '{model_name}'; run the promote stage first")
    return champion


def _value(champion: Any, metric: str) -> float:
    try:
        return float(champion.tags.get(f"medtune.val_{metric}", "nan"))
    except ValueError:
        return math.nan


def decide(new_value: float, new_split: str, champion: Any | None, metric: str, min_delta: float,
           mode: str = "max", on_new_split: str = "promote") -> tuple[bool, str]:
    """Champion/challenger gate on validation: beat the champion on the same split by min_delta.

    Values from different validation splits are not comparable, so there `on_new_split` decides.
    """
    name = f"val_{metric}"
    if champion is None:
        return True, "no champion yet: the first registered model becomes champion"
    if champion.tags.get("medtune.split_hash") != new_split:
        where = (f"champion v{champion.version} was validated on split {champion.tags.get('medtune.split_hash')}, "
                 f"this model on {new_split}: {name} values are not comparable")
        if on_new_split == "keep":
            return False, f"{where}; registry.on_new_split=keep, so the champion stays"
        return True, f"{where}; registry.on_new_split=promote, so the new model becomes champion"
    old = _value(champion, metric)
    if math.isnan(new_value):
        return False, f"{name} is NaN (one class in validation?); champion v{champion.version} stays"
    if math.isnan(old):
        return True, f"champion v{champion.version} has no {name} recorded; {name} {new_value:.4f} replaces it"
    gain = (new_value - old) if mode == "max" else (old - new_value)
    versus = f"{name} {new_value:.4f} vs champion v{champion.version} {old:.4f} on split {new_split}: gain {gain:+.4f}"
    if gain >= min_delta:
        return True, f"{versus} >= min_delta {min_delta}; the new model becomes champion"
    return False, f"{versus} < min_delta {min_delta}; champion stays"


def promote(model_name: str, version: str, metric: str, value: float, split_hash: str,
            min_delta: float, mode: str = "max", on_new_split: str = "promote") -> Promotion:
    """Make `version` the challenger, then the champion if it passes the gate; record every move.

    The caller holds the project's promote lock (locks.py). Records an interrupted promote left behind
    are closed first; afterwards the alias is read back, so a move by a process outside the lock (another
    machine on the same MLflow server) is reported instead of silently recorded as ours.
    """
    client = MlflowClient()
    champion = alias_version(client, model_name, CHAMPION)
    close_stale_champions(client, model_name, champion)
    promoted, reason = decide(value, split_hash, champion, metric, min_delta, mode, on_new_split)
    at = _now()
    previous = str(champion.version) if champion else None
    moves = [(CHALLENGER, version, _alias_target(client, model_name, CHALLENGER))]
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    if promoted:
        client.set_registered_model_alias(model_name, CHAMPION, version)
        client.set_model_version_tag(model_name, version, "medtune.champion_since", at)
        if previous is not None and previous != version:
            client.set_model_version_tag(model_name, previous, "medtune.champion_until", at)
            client.set_model_version_tag(model_name, previous, "medtune.replaced_by", version)
        moves.append((CHAMPION, version, previous))
    client.set_model_version_tag(model_name, version, "medtune.gate", "champion" if promoted else "challenger")
    client.set_model_version_tag(model_name, version, "medtune.promotion", reason)
    _append_history(client, model_name, moves, at, reason)
    _check_alias(client, model_name, version if promoted else previous)
    return Promotion(model_name, version, promoted, reason, metric, value, split_hash, min_delta, on_new_split,
                     previous, _value(champion, metric) if champion else None,
                     version if promoted or previous is None else previous, at)


def close_stale_champions(client: MlflowClient, model_name: str, champion: Any | None) -> list[str]:
    """Make the version tags agree with the alias: one version recorded as champion, the one it names.

    A promote killed between moving the alias and tagging the versions leaves a replaced champion
    without `champion_until` (two champions on record) or the new one without `champion_since`.
    Returns the versions whose record was closed.
    """
    current = str(champion.version) if champion is not None else None
    closed = []
    for found in client.search_model_versions(f"name='{model_name}'"):
        tags, number = found.tags, str(found.version)
        if number != current and "medtune.champion_since" in tags and "medtune.champion_until" not in tags:
            client.set_model_version_tag(model_name, number, "medtune.champion_until", _now())
            client.set_model_version_tag(model_name, number, "medtune.replaced_by", current or "")
            closed.append(number)
        elif number == current and "medtune.champion_since" not in tags:
            client.set_model_version_tag(model_name, number, "medtune.champion_since", _now())
    return closed


def _check_alias(client: MlflowClient, model_name: str, expected: str | None) -> None:
    """Fail with one line when the champion alias is not where this promote left it."""
    found = _alias_target(client, model_name, CHAMPION)
    if expected is not None and found != expected:
        raise MedtuneError(f"registered model '{model_name}': champion moved to v{found} while this promote set "
                           f"v{expected}; another promote used the same MLflow server at the same time (the "
                           "project lock covers one machine only): check the alias before using it")


def _alias_target(client: MlflowClient, model_name: str, alias: str) -> str | None:
    found = alias_version(client, model_name, alias)
    return str(found.version) if found else None


def alias_history(client: MlflowClient, model_name: str) -> list[dict[str, Any]]:
    """The recorded alias moves of a registered model, oldest first."""
    return json.loads(client.get_registered_model(model_name).tags.get(HISTORY_TAG, "[]"))


def _append_history(client: MlflowClient, model_name: str, moves: list[tuple[str, str, str | None]],
                    at: str, reason: str) -> None:
    history = alias_history(client, model_name)
    history += [{"alias": alias, "version": to, "from": before, "at": at, "reason": reason[:120]}
                for alias, to, before in moves]
    blob = json.dumps(history)
    while len(blob) > _HISTORY_LIMIT and len(history) > 1:  # oldest first out; version tags keep the rest
        history = history[1:]
        blob = json.dumps(history)
    client.set_registered_model_tag(model_name, HISTORY_TAG, blob)


def write_promotion(promotion: Promotion, path: Path) -> None:
    write_json(path, asdict(promotion))


def register_and_gate(client: MlflowClient, run_id: str, cfg: RegistryCfg, artifacts: dict[str, str], net: Any,
                      example: Any, meta: dict[str, Any], tags: dict[str, str], val_metrics: dict[str, Any],
                      shash: str, out: Path) -> Promotion:
    """Log and register the model under the promote run, gate the champion alias, record the decision.

    The gate compares the task's threshold-free selection metric (AUROC; MAE for regression, lower
    wins), so it does not depend on the threshold promote also picks.
    """
    task = Task.from_dict(meta["task"])
    metric = task.score_name
    value = val_metrics[metric]
    example_out = predictions_frame(predict_proba(net, example), meta["task"], meta["threshold"])
    description = (f"trial {tags['medtune.trial_id']} of sweep {tags['medtune.sweep_run_id']}: {task.kind}, val "
                   f"{metric} {value:.4f} on split {shash}")
    version = log_and_register(cfg.model_name, run_id, artifacts, example, example_out, tags, description)
    decision = promote(cfg.model_name, version, metric, value, shash, cfg.min_delta, mode=task.mode,
                       on_new_split=cfg.on_new_split)
    decision.lineage = {k.removeprefix("medtune."): v for k, v in tags.items() if not k.startswith("medtune.val_")}
    write_promotion(decision, out)
    client.set_tag(run_id, "medtune.model_version", version)
    client.set_tag(run_id, "medtune.gate", "champion" if decision.promoted else "challenger")
    client.log_artifact(run_id, str(out))
    return decision
