"""Stage `promote`: threshold on validation, register the best trial, gate the champion alias."""

from __future__ import annotations

import dataclasses
import json
import time

import torch

from medtune import paths
from medtune.config import Params
from medtune.data.datamodule import class_names_from, load_split, read_index
from medtune.data.split import load_valid_splits, split_hash
from medtune.errors import DataError
from medtune.evaluate import binary_metrics, choose_threshold, multiclass_metrics
from medtune.jsonio import read_json
from medtune.tracking.lineage import dvc_dep_hash, lineage_tags, lock_is_current
from medtune.tracking.pyfunc import predictions_frame, write_model_files
from medtune.tracking.registry import log_and_register, promote, write_promotion
from medtune.tracking.sweep_log import ensure_experiment, open_run_client
from medtune.train import load_net, predict_proba

GATE_METRIC = "auroc"  # threshold-free, so the gate does not depend on the threshold it also picks


def validate_model(net_dict: dict, state: dict, processed_split) -> tuple[float, dict]:
    """Threshold and metrics on validation: every choice is made here, never on test."""
    prob = predict_proba(load_net(net_dict, state), processed_split.x)
    if prob.ndim == 1:
        threshold = choose_threshold(processed_split.y, prob)
        return threshold, binary_metrics(processed_split.y, prob, threshold)
    return 0.5, multiclass_metrics(processed_split.y, prob)


def version_tags(params: Params, best: dict, shash: str, threshold: float, val_metrics: dict) -> dict[str, str]:
    """Lineage of one model version: code, data, split, params, sweep, trial and validation numbers."""
    upstream = {k: dataclasses.asdict(getattr(params, k)) for k in ("ingest", "preprocess", "split", "search")}
    upstream |= {"train": best["train"], "seed": params.base.seed}
    splits_current = lock_is_current("split", str(paths.SPLITS))
    return {**lineage_tags(shash, upstream),
            "medtune.splits_md5": dvc_dep_hash("split", str(paths.SPLITS)) if splits_current else "unknown",
            "medtune.sweep_run_id": best["sweep_run_id"], "medtune.trial_id": best["trial_id"],
            "medtune.trial_params": json.dumps(best.get("config", {}), sort_keys=True, default=str)[:4000],
            "medtune.threshold": f"{threshold:.6f}",
            **{f"medtune.val_{k}": f"{v:.6f}" for k, v in val_metrics.items() if isinstance(v, float)}}


def run(params: Params) -> None:
    started = time.perf_counter()
    best = read_json(paths.BEST, "best trial (tune stage)")
    splits = load_valid_splits(paths.SPLITS, paths.PROCESSED)  # a hand-edited file is checked here
    shash = split_hash(splits)
    if best["split_hash"] != shash:
        raise DataError(f"{paths.BEST} was tuned on split {best['split_hash']}, not the current {shash}; "
                        "re-run the tune stage")
    bundle = torch.load(paths.BEST_MODEL, weights_only=True, map_location="cpu")
    val = load_split(paths.PROCESSED, splits, "val")
    threshold, val_metrics = validate_model(bundle["net"], bundle["state_dict"], val)
    names = class_names_from(read_index(paths.PROCESSED))
    # The settings preprocess actually used (`auto` resolved), so predict decodes new files the same way.
    settings = read_json(paths.PREPROCESS_SETTINGS, "preprocessing settings (preprocess stage)")
    meta = {"preprocess": settings, "class_names": names,
            "threshold": threshold, "trial_id": best["trial_id"], "train": best["train"], "split_hash": shash}
    artifacts = write_model_files(paths.MODEL_FILES, bundle["net"], bundle["state_dict"], meta)
    client = open_run_client(params.tracking_uri)
    experiment_id = ensure_experiment(client, params.base.experiment, params.base.artifact_root)
    tags = version_tags(params, best, shash, threshold, val_metrics)
    run = client.create_run(experiment_id, run_name="promote",
                            tags={"mlflow.parentRunId": best["sweep_run_id"], "medtune.kind": "promote", **tags})
    for key, value in val_metrics.items():
        if isinstance(value, (int, float)):
            client.log_metric(run.info.run_id, f"val_{key}", float(value))
    example = val.x[:2]
    example_out = predictions_frame(predict_proba(load_net(bundle["net"], bundle["state_dict"]), example),
                                    names, threshold)
    value = val_metrics[GATE_METRIC]
    description = (f"trial {best['trial_id']} of sweep {best['sweep_run_id']}: val {GATE_METRIC} {value:.4f} "
                   f"on split {shash}, threshold {threshold:.3f}")
    version = log_and_register(params.registry.model_name, run.info.run_id, artifacts, example, example_out,
                               tags, description)
    decision = promote(params.registry.model_name, version, GATE_METRIC, value, shash,
                       params.registry.min_delta, on_new_split=params.registry.on_new_split)
    decision.lineage = {k.removeprefix("medtune."): v for k, v in tags.items() if not k.startswith("medtune.val_")}
    write_promotion(decision, paths.PROMOTION)
    client.set_tag(run.info.run_id, "medtune.model_version", version)
    client.set_tag(run.info.run_id, "medtune.gate", "champion" if decision.promoted else "challenger")
    client.log_artifact(run.info.run_id, str(paths.PROMOTION))
    client.set_terminated(run.info.run_id)
    verdict = "champion" if decision.promoted else f"challenger only, champion stays v{decision.champion}"
    print(f"promote: {params.registry.model_name} v{version} -> {verdict} ({decision.reason}); "
          f"val {GATE_METRIC}={value:.4f}, threshold={threshold:.3f} [{time.perf_counter() - started:.1f}s]")
