"""MLflow runs of the stages after the sweep (promote, test): opened, filled and closed in one place."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from mlflow.tracking import MlflowClient

from medtune.config import BaseCfg
from medtune.tracking.sweep_log import ensure_experiment

T = TypeVar("T")


@contextmanager
def stage_run(client: MlflowClient, base: BaseCfg, name: str, tags: dict[str, str]) -> Iterator[str]:
    """Open a run in the pipeline's experiment; it ends FINISHED, or FAILED when the block raises."""
    experiment_id = ensure_experiment(client, base.experiment, base.artifact_root)
    run_id = client.create_run(experiment_id, run_name=name, tags=tags).info.run_id
    try:
        yield run_id
    except BaseException:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id)


def log_numbers(client: MlflowClient, run_id: str, values: dict[str, Any], prefix: str = "") -> None:
    """Log every int/float value of a metrics dict (nested dicts and strings are report-only)."""
    for key, value in values.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            client.log_metric(run_id, f"{prefix}{key}", float(value))


def log_files(client: MlflowClient, run_id: str, files: list[Path]) -> None:
    """Attach report files that exist to a run."""
    for path in files:
        if Path(path).exists():
            client.log_artifact(run_id, str(path))


def flatten_params(nested: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """{"train": {"lr": ..}, "search": {"space": [...]}} -> {"train.lr": .., "space.lr": [low, high, log]}."""
    out: dict[str, Any] = {}
    for section, values in nested.items():
        for key, value in values.items():
            if key == "space":
                for spec in value:
                    out[f"space.{spec['name']}"] = spec["choices"] or [spec["low"], spec["high"], spec["log"]]
            else:
                out[f"{section}.{key}"] = value
    return out


def log_promote_run(client: MlflowClient, base: BaseCfg, sweep_run_id: str, tags: dict[str, str],
                    val_metrics: dict[str, Any], register: Callable[[str], T]) -> T:
    """The promote decision as an MLflow run nested under its sweep: the validation metrics, and whatever
    `register(run_id)` logs (the model version, the gate); returns what `register` returns."""
    with stage_run(client, base, "promote", {"mlflow.parentRunId": sweep_run_id, "medtune.kind": "promote",
                                             **tags}) as run_id:
        log_numbers(client, run_id, val_metrics, prefix="val_")
        return register(run_id)


def log_test_run(client: MlflowClient, base: BaseCfg, model_name: str, version: str, split_hash: str,
                 metrics: dict[str, Any], files: list[Path], entry: dict[str, Any], tag: str) -> str:
    """The test scoring as an MLflow run, and the version tag `tag` that locks this split for it."""
    tags = {"medtune.kind": "test", "medtune.model_version": version, "medtune.split_hash": split_hash,
            "medtune.scored_by": entry["user"], "medtune.rescore_reason": entry["rescore_reason"] or ""}
    with stage_run(client, base, f"test-v{version}", tags) as run_id:
        log_numbers(client, run_id, metrics, prefix="test_")
        log_files(client, run_id, files)
    client.set_model_version_tag(model_name, version, tag, json.dumps(
        {"at": entry["scored_at"], "run_id": run_id, "user": entry["user"], "rescore_reason": entry["rescore_reason"]}))
    return run_id


def finish_test_run(client: MlflowClient, base: BaseCfg, model_name: str, version: str, split_hash: str,
                    entry: dict[str, Any] | None, metrics_path: Path, files: list[Path], tag: str) -> None:
    """Log a scoring the ledger recorded (`entry`) but MLflow never saw (the stage was killed in between),
    unless the version's tag says it was logged: the next `dvc repro` completes the record, not rescores."""
    if entry is not None and tag not in client.get_model_version(model_name, version).tags:
        log_test_run(client, base, model_name, version, split_hash, json.loads(Path(metrics_path).read_text()),
                     files, entry, tag)

