"""Stage `test`: score the registered champion on the held-out test split, once.

This is the only caller of `load_split(..., "test", allow_test=True)`. Before loading a single test
image it checks two records of earlier scorings: the ledger file and a tag on the model version. The
threshold comes with the model (chosen on validation by promote); nothing is fitted here.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pandas as pd

from medtune import paths
from medtune.config import Params
from medtune.data.datamodule import load_split, read_index
from medtune.data.split import load_valid_splits, split_hash
from medtune.errors import DataError, TestSetLockedError
from medtune.evaluate import TestLedger, write_plots
from medtune.gradcam import write_gradcam_grid
from medtune.jsonio import write_json
from medtune.predict import load_registered
from medtune.report import breakdown, score_test, write_breakdown
from medtune.tracking.registry import CHAMPION, alias_version
from medtune.tracking.sweep_log import ensure_experiment, open_run_client


def run(params: Params, rescore_reason: str | None = None, skip_scored: bool = False) -> None:
    name = params.registry.model_name
    splits = load_valid_splits(paths.SPLITS, paths.PROCESSED)
    shash = split_hash(splits)
    client = open_run_client(params.tracking_uri)
    champion = alias_version(client, name, CHAMPION)
    if champion is None:
        raise DataError(f"no '{CHAMPION}' alias on registered model '{name}'; run the promote stage first")
    ledger, tag = TestLedger(paths.LEDGER), f"medtune.test_scored.{shash}"
    if rescore_reason is None:
        try:
            ledger.check(name, champion.version, shash)
            if tag in champion.tags:
                raise TestSetLockedError(f"test split {shash} was already scored for {name} v{champion.version} "
                                         f"({champion.tags[tag]}); the held-out test set is scored once")
        except TestSetLockedError as locked:
            if skip_scored and _report_is_for(champion.version, shash):
                print(f"test: {name} v{champion.version} on split {shash} was already scored; its report in "
                      f"{paths.TEST_REPORTS} stands (nothing rescored)")
                return
            raise locked from None
    # The exact version checked above (the alias could move meanwhile), through the guard that refuses
    # models medtune did not register.
    model = load_registered(f"models:/{name}/{champion.version}", params.tracking_uri).model
    metrics, outputs = score_and_report(model, splits, params, paths.TEST_REPORTS)
    metrics |= {"model_version": int(champion.version), "split_hash": shash}
    write_json(paths.TEST_METRICS, metrics)
    entry = ledger.record(name, champion.version, shash, metrics, rescore_reason)
    _log_to_mlflow(client, params, champion, metrics, outputs, shash, entry)
    print(f"test: {name} v{champion.version} on split {shash}: " +
          ", ".join(f"{k}={v:.4f}" for k, v in metrics.items() if isinstance(v, float)))


def _report_is_for(version: str, shash: str) -> bool:
    """Whether reports/test/metrics.json is the recorded scoring of this champion on this split."""
    try:
        metrics = json.loads(paths.TEST_METRICS.read_text())
    except (OSError, ValueError):
        return False
    return str(metrics.get("model_version")) == str(version) and metrics.get("split_hash") == shash


def score_and_report(model, splits: dict, params: Params, out_dir: Path) -> tuple[dict, dict[str, Path]]:
    """Metrics at the model's stored threshold, plots, per-site breakdown and Grad-CAM grid for the test split."""
    meta = model.unwrap_python_model().meta
    test = load_split(paths.PROCESSED, splits, "test", allow_test=True)
    frame = model.predict(test.x)
    probs = frame[[f"prob_{c}" for c in meta["class_names"]]].to_numpy()
    metrics = score_test(test.y, probs, test.patient_keys, meta, params.test.bootstrap, params.base.seed)
    threshold = float(meta.get("threshold", 0.5))
    outputs: dict[str, Path] = {}
    if probs.shape[1] == 2:
        outputs |= write_plots(test.y, probs[:, 1], threshold, out_dir)
    rows = read_index(paths.PROCESSED).set_index("sample_id", drop=False).loc[test.sample_ids]
    outputs |= write_breakdown(breakdown(pd.DataFrame(rows), test.y, probs, threshold), out_dir)
    prob = probs[:, 1] if probs.shape[1] == 2 else probs
    grid = write_gradcam_grid(model.unwrap_python_model().net, test.x, test.y, prob, threshold, meta["class_names"],
                              params.test.gradcam_cases, out_dir / "gradcam.png")
    if grid is not None:
        outputs["gradcam.png"] = grid
    return metrics, outputs


def _log_to_mlflow(client, params: Params, champion, metrics: dict, outputs: dict, shash: str, entry: dict) -> None:
    experiment_id = ensure_experiment(client, params.base.experiment, params.base.artifact_root)
    run = client.create_run(experiment_id, run_name=f"test-v{champion.version}",
                            tags={"medtune.kind": "test", "medtune.model_version": str(champion.version),
                                  "medtune.split_hash": shash, "medtune.scored_by": getpass.getuser(),
                                  "medtune.rescore_reason": entry["rescore_reason"] or ""})
    for key, value in metrics.items():
        if isinstance(value, (int, float)):
            client.log_metric(run.info.run_id, f"test_{key}", float(value))
    for path in outputs.values():
        client.log_artifact(run.info.run_id, str(path))
    client.log_artifact(run.info.run_id, str(paths.TEST_METRICS))
    client.set_terminated(run.info.run_id)
    client.set_model_version_tag(params.registry.model_name, champion.version, f"medtune.test_scored.{shash}",
                                 json.dumps({"at": entry["scored_at"], "run_id": run.info.run_id,
                                             "user": entry["user"], "rescore_reason": entry["rescore_reason"]}))
