"""Stage `test`: score the registered champion on the held-out test split, once.

This is the only caller of `load_split(..., "test", allow_test=True)`. Before loading a single test
image it checks two records of earlier scorings: the ledger file and a tag on the model version.
"""

from __future__ import annotations

import getpass
import json

import mlflow

from medtune import paths
from medtune.config import Params
from medtune.data.datamodule import load_split
from medtune.data.split import load_splits, split_hash
from medtune.errors import DataError, TestSetLockedError
from medtune.evaluate import TestLedger, binary_metrics, bootstrap_auroc_ci, multiclass_metrics, write_plots
from medtune.jsonio import write_json
from medtune.tracking.registry import CHAMPION, alias_version
from medtune.tracking.sweep_log import ensure_experiment, open_run_client


def run(params: Params, rescore_reason: str | None = None) -> None:
    name = params.registry.model_name
    splits = load_splits(paths.SPLITS)
    shash = split_hash(splits)
    client = open_run_client(params.tracking_uri)
    champion = alias_version(client, name, CHAMPION)
    if champion is None:
        raise DataError(f"no '{CHAMPION}' alias on registered model '{name}'; run the promote stage first")
    ledger, tag = TestLedger(paths.LEDGER), f"medtune.test_scored.{shash}"
    if rescore_reason is None:
        ledger.check(name, champion.version, shash)
        if tag in champion.tags:
            raise TestSetLockedError(f"test split {shash} was already scored for {name} v{champion.version} "
                                     f"({champion.tags[tag]}); the held-out test set is scored once")
    model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    meta = model.unwrap_python_model().meta
    test = load_split(paths.PROCESSED, splits, "test", allow_test=True)
    frame = model.predict(test.x)
    probs = frame[[f"prob_{c}" for c in meta["class_names"]]].to_numpy()
    if probs.shape[1] == 2:
        prob = probs[:, 1]
        metrics = binary_metrics(test.y, prob, meta["threshold"])
        low, high = bootstrap_auroc_ci(test.y, prob, test.patient_keys, params.test.bootstrap, params.base.seed)
        metrics |= {"auroc_ci_low": low, "auroc_ci_high": high, "threshold": meta["threshold"]}
        plots = write_plots(test.y, prob, meta["threshold"], paths.TEST_REPORTS)
    else:
        metrics, plots = multiclass_metrics(test.y, probs), {}
    metrics |= {"model_version": int(champion.version)}
    write_json(paths.TEST_METRICS, metrics)
    entry = ledger.record(name, champion.version, shash, metrics, rescore_reason)
    _log_to_mlflow(client, params, champion, metrics, plots, shash, entry)
    print(f"test: {name} v{champion.version} on split {shash}: " +
          ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))


def _log_to_mlflow(client, params: Params, champion, metrics: dict, plots: dict, shash: str, entry: dict) -> None:
    experiment_id = ensure_experiment(client, params.base.experiment, params.base.artifact_root)
    run = client.create_run(experiment_id, run_name=f"test-v{champion.version}",
                            tags={"medtune.kind": "test", "medtune.model_version": str(champion.version),
                                  "medtune.split_hash": shash, "medtune.scored_by": getpass.getuser()})
    for key, value in metrics.items():
        if isinstance(value, (int, float)):
            client.log_metric(run.info.run_id, f"test_{key}", float(value))
    for path in plots.values():
        client.log_artifact(run.info.run_id, str(path))
    client.log_artifact(run.info.run_id, str(paths.TEST_METRICS))
    client.set_terminated(run.info.run_id)
    client.set_model_version_tag(params.registry.model_name, champion.version, f"medtune.test_scored.{shash}",
                                 json.dumps({"at": entry["scored_at"], "run_id": run.info.run_id}))
