"""Stage `promote`: calibration and threshold on validation (or out-of-fold) predictions, register the best
trial or its fold ensemble, gate the champion alias. One promote at a time per project (a second waits):
racing runs never decide against one old champion (see locks.py)."""

from __future__ import annotations

import time

import torch

from medtune import paths
from medtune.config import Params
from medtune.data.split import current_split, load_valid_splits
from medtune.jsonio import read_json
from medtune.locks import one_at_a_time
from medtune.task import read_task
from medtune.tracking.lineage import version_tags
from medtune.tracking.pyfunc import model_meta, write_model_files
from medtune.tracking.registry import register_and_gate
from medtune.tracking.runs import log_promote_run
from medtune.tracking.sweep_log import open_run_client
from medtune.tune.candidates import choose_candidate


@one_at_a_time("promote", "`medtune promote`", wait_s=1800)  # another promote here: wait up to 30 min
def run(params: Params) -> None:
    started, best = time.perf_counter(), read_json(paths.BEST, "best trial (tune stage)")
    splits = load_valid_splits(paths.SPLITS, paths.PROCESSED)  # a hand-edited file is checked here
    shash = current_split(splits, best["split_hash"], str(paths.BEST))
    bundle = torch.load(paths.BEST_MODEL, weights_only=True, map_location="cpu")
    chosen, val = choose_candidate(params, best, bundle, paths.PROCESSED, splits, task := read_task(paths.TASK))
    meta = model_meta(read_json(paths.PREPROCESS_SETTINGS, "preprocessing settings (preprocess stage)"),
                      task, chosen.inference, best, shash)
    artifacts = write_model_files(paths.MODEL_FILES, chosen.spec, chosen.state_dict, meta)
    val_metrics = chosen.choice.metrics
    tags = version_tags(params, best, shash, task, chosen.inference, val_metrics) | chosen.tags
    client = open_run_client(params.tracking_uri)
    decision = log_promote_run(client, params.base, best["sweep_run_id"], tags, val_metrics, lambda run_id: (
        register_and_gate(client, run_id, params.registry, artifacts, chosen.network, val.x[:2], meta, tags,
                          val_metrics, shash, paths.PROMOTION)))
    print(f"promote: {decision.summary()}, {chosen.selection}, {chosen.choice.summary()} "
          f"[{time.perf_counter() - started:.1f}s]")
