"""Stage `promote`: threshold on validation, register the best trial, gate the champion alias.

Promotes in one project run one at a time (a second waits for the first), so two racing runs never
decide against the same old champion; locks.py says what that lock cannot cover.
"""

from __future__ import annotations

import time

import torch

from medtune import paths
from medtune.config import Params
from medtune.data.datamodule import class_names_from, load_split, read_index
from medtune.data.split import load_valid_splits, split_hash
from medtune.errors import DataError
from medtune.evaluate.selection import validate_model
from medtune.jsonio import read_json
from medtune.locks import LOCKS, exclusive
from medtune.models.inference import load_net
from medtune.tracking.lineage import version_tags
from medtune.tracking.pyfunc import write_model_files
from medtune.tracking.registry import register_and_gate
from medtune.tracking.runs import log_numbers, stage_run
from medtune.tracking.sweep_log import open_run_client

WAIT_S = 1800.0  # a promote waits this long for another one in the same project to finish


def run(params: Params) -> None:
    with exclusive(LOCKS / "promote.lock", "`medtune promote`", wait_s=WAIT_S):
        _promote(params)


def _promote(params: Params) -> None:
    started = time.perf_counter()
    best = read_json(paths.BEST, "best trial (tune stage)")
    splits = load_valid_splits(paths.SPLITS, paths.PROCESSED)  # a hand-edited file is checked here
    shash = split_hash(splits)
    if best["split_hash"] != shash:
        raise DataError(f"{paths.BEST} was tuned on split {best['split_hash']}, not the current {shash}; "
                        "re-run the tune stage")
    bundle = torch.load(paths.BEST_MODEL, weights_only=True, map_location="cpu")
    val = load_split(paths.PROCESSED, splits, "val")
    net = load_net(bundle["net"], bundle["state_dict"])
    threshold, val_metrics = validate_model(net, val)
    # The settings preprocess actually used (`auto` resolved), so predict decodes new files the same way.
    meta = {"preprocess": read_json(paths.PREPROCESS_SETTINGS, "preprocessing settings (preprocess stage)"),
            "class_names": class_names_from(read_index(paths.PROCESSED)), "threshold": threshold,
            "trial_id": best["trial_id"], "train": best["train"], "split_hash": shash}
    artifacts = write_model_files(paths.MODEL_FILES, bundle["net"], bundle["state_dict"], meta)
    tags = version_tags(params, best, shash, threshold, val_metrics)
    client = open_run_client(params.tracking_uri)
    with stage_run(client, params.base, "promote", {"mlflow.parentRunId": best["sweep_run_id"],
                                                    "medtune.kind": "promote", **tags}) as run_id:
        log_numbers(client, run_id, val_metrics, prefix="val_")
        decision = register_and_gate(client, run_id, params.registry, artifacts, net, val.x[:2], meta, tags,
                                     val_metrics, shash, paths.PROMOTION)
    verdict = "champion" if decision.promoted else f"challenger only, champion stays v{decision.champion}"
    print(f"promote: {decision.model_name} v{decision.version} -> {verdict} ({decision.reason}); "
          f"val {decision.val_metric}={decision.val_value:.4f}, threshold={threshold:.3f} "
          f"[{time.perf_counter() - started:.1f}s]")
