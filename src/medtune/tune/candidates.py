"""What promote registers: the best trial alone, the mean of the sweep's top-k trials, or - when the split
has CV folds - the K fold models of the best trial's config.

Without folds, the k best trials (`search.ensemble_top_k`; tune keeps their checkpoints) averaged as one
network compete with the best trial alone on the val split; the ensemble is registered only when it is
strictly better there (a tie keeps the single network, k times cheaper to serve). Both were chosen on the
same val split (each member's best epoch, the trials' ranking), so neither comparison side is out-of-sample;
the test report is the honest check.

With `split.folds`, the sweep tunes on the main train/val split (one fit per trial keeps ASHA's budget
on configs, not folds), then the best trial's config is refit once per fold on the other K-1 folds, for
its full epoch schedule (the last epoch is kept: nothing is chosen on the held-out fold). Each fold
model predicts its held-out fold, so every train+val patient gets one out-of-fold (OOF) prediction from
a model that never saw it. The OOF predictions fit the calibration and the threshold, and give the
honest estimate. The candidates are compared on the same patients, the val split: the best trial's val
predictions against the OOF predictions there (one fold model each, so the K-model ensemble is, if
anything, under-rated); the better is registered. The test split is never read here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from medtune.config import Params, TrainCfg
from medtune.data.datamodule import SplitArrays, TrainData, load_split
from medtune.evaluate.bootstrap import patient_bootstrap
from medtune.evaluate.metrics import task_metrics
from medtune.evaluate.selection import Choice, choose_on_validation, validate_model
from medtune.models.ensemble import EnsembleNet
from medtune.models.inference import calibrate, load_net, predict_proba
from medtune.task import Task
from medtune.tracking.pretrained import resolve_pretrained


@dataclass
class FoldFit:
    """Out-of-fold outputs over train+val (in `ids` order), their targets, and the K fold models."""

    oof: np.ndarray
    y: np.ndarray
    ids: list[str]
    patients: list[str]
    nets: list[nn.Module]
    spec: dict[str, Any]


@dataclass
class Candidate:
    """The model promote registers, what was chosen for it, and how it was selected."""

    network: nn.Module
    spec: dict[str, Any] | list[dict[str, Any]]  # a list: one per member of a top-k ensemble
    choice: Choice
    selection: str                      # best_trial | top_k_ensemble | fold_ensemble
    members: int = 0                    # networks in the ensemble (0: one network)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def inference(self) -> dict[str, Any]:
        return self.choice.inference | ({"members": self.members} if self.members else {})

    @property
    def state_dict(self) -> dict[str, Any]:
        return self.network.state_dict()


def refit_folds(cfg: TrainCfg, processed: Path, splits: dict[str, Any], task: Task, tta: bool,
                init_state: dict | None = None) -> FoldFit:
    """Fit `cfg` once per fold on the other folds; each model predicts its held-out fold."""
    from medtune.train import fit  # Lightning (~2.5 s to import): only a promote with CV folds trains

    pool = [str(s) for name in ("train", "val") for s in splits[name]]
    outputs, ys, ids, patients, nets, spec = [], [], [], [], [], {}
    for k, held in enumerate(splits["folds"]):
        out_of_fold = set(map(str, held))
        fold = {"train": [s for s in pool if s not in out_of_fold], "val": [str(s) for s in held]}
        data = TrainData(load_split(processed, fold, "train"), load_split(processed, fold, "val"), task)
        result = fit(cfg, data, init_state=init_state, select=("epoch", "max"))  # the last epoch
        net, spec = load_net(result.net, result.state_dict), result.net
        outputs.append(predict_proba(net, data.val.x, tta=tta))
        ys.append(data.val.y)
        ids += data.val.sample_ids
        patients += data.val.patient_keys
        nets.append(net)
        print(f"promote: fold {k + 1}/{len(splits['folds'])} refit on {len(data.train)} images, "
              f"{len(data.val)} held out", flush=True)
    return FoldFit(np.concatenate(outputs), np.concatenate(ys), ids, patients, nets, spec)


def _metric(task: Task, y: np.ndarray, out: np.ndarray, choice: Choice) -> float:
    """The gate's threshold-free metric (AUROC; MAE for regression) of calibrated outputs."""
    calibrated = calibrate(out, task.kind, choice.calibration)
    scored = task_metrics(task.kind, y, calibrated, choice.threshold, list(task.names))
    return float(scored[task.score_name])


def _gate(task: Task) -> tuple[str, float]:
    """The metric candidates are compared on (the task's) and its sign (+1: higher wins)."""
    return task.score_name, 1.0 if task.mode == "max" else -1.0


def oof_ci(task: Task, folds: FoldFit, choice: Choice, n_boot: int, seed: int) -> tuple[float, float]:
    """95% CI of the out-of-fold estimate, resampling patients (as the test report does)."""
    calibrated, metric = calibrate(folds.oof, task.kind, choice.calibration), task.score_name

    def score(idx: np.ndarray) -> dict[str, float]:
        return {"m": task_metrics(task.kind, folds.y[idx], calibrated[idx], choice.threshold, list(task.names))[metric]}

    return patient_bootstrap(score, folds.patients, n_boot, seed).get("m", (float("nan"), float("nan")))


def kept_networks(top: list[dict[str, Any]]) -> tuple[list[nn.Module], list[dict[str, Any]]]:
    """The networks of the trials tune kept (best.json `top`, best first), and their specs."""
    bundles = [torch.load(t["checkpoint"], weights_only=True, map_location="cpu") for t in top]
    return [load_net(b["net"], b["state_dict"]) for b in bundles], [b["net"] for b in bundles]


def top_k_candidate(params: Params, best: dict[str, Any], single: Candidate, val: SplitArrays,
                    task: Task) -> Candidate:
    """The mean of the k best trials tune kept (best.json `top`) if it beats `single` on val, else `single`;
    both sides' val metric is recorded on the winner."""
    top = best.get("top") or []
    if len(top) < 2:
        return single
    nets, specs = kept_networks(top)
    network = EnsembleNet(nets).eval()
    ensemble = Candidate(network, specs, validate_model(network, val, task, params.registry),
                         "top_k_ensemble", len(nets),
                         tags={"medtune.selection": "top_k_ensemble", "medtune.folds": "0",
                               "medtune.members": ",".join(str(t["trial_id"]) for t in top)})
    metric, sign = _gate(task)
    scores = {"best_trial": single.choice.metrics[metric], "top_k": ensemble.choice.metrics[metric]}
    won = ensemble if sign * scores["top_k"] > sign * scores["best_trial"] else single
    won.choice.metrics |= {f"cmp_{metric}_{name}_on_val": value for name, value in scores.items()}
    return won


def choose_candidate(params: Params, best: dict[str, Any], bundle: dict[str, Any], processed: Path,
                     splits: dict[str, Any], task: Task) -> tuple[Candidate, SplitArrays]:
    """The best trial alone, or the ensemble that beats it on the val patients: the K-fold ensemble when the
    split has folds (a tie goes to it), else the top-k ensemble; (candidate, the val split)."""
    val, net = load_split(processed, splits, "val"), load_net(bundle["net"], bundle["state_dict"])
    single = Candidate(net, bundle["net"], validate_model(net, val, task, params.registry), "best_trial",
                       tags={"medtune.selection": "best_trial", "medtune.folds": "0",
                             "medtune.members": str(best["trial_id"])})
    if not splits.get("folds"):
        return top_k_candidate(params, best, single, val, task), val
    cfg = TrainCfg(**best["train"])
    init = resolve_pretrained(cfg, (), val.x.shape[1], task, params.tracking_uri)[0].get(cfg.arch)
    folds = refit_folds(cfg, processed, splits, task, params.registry.tta, init)
    oof = choose_on_validation(task, folds.y, folds.oof, params.registry, params.registry.tta)
    at = {sid: i for i, sid in enumerate(folds.ids)}
    on_val = np.array([at[sid] for sid in val.sample_ids])
    metric, sign = _gate(task)
    scores = {"best_trial": single.choice.metrics[metric],
              "oof": _metric(task, folds.y[on_val], folds.oof[on_val], oof)}
    ensemble = Candidate(EnsembleNet(folds.nets).eval(), folds.spec, oof, "fold_ensemble", len(folds.nets))
    won = ensemble if sign * scores["oof"] >= sign * scores["best_trial"] else single
    low, high = oof_ci(task, folds, oof, params.test.bootstrap, params.base.seed)
    comparison = {f"cv_{metric}_oof": oof.metrics[metric], f"cv_{metric}_oof_ci_low": low,
                  f"cv_{metric}_oof_ci_high": high, f"cmp_{metric}_best_trial_on_val": scores["best_trial"],
                  f"cmp_{metric}_oof_on_val": scores["oof"]}
    won.choice.metrics |= comparison
    won.tags = {"medtune.selection": won.selection, "medtune.folds": str(len(folds.nets)),
                "medtune.members": ",".join(f"{best['trial_id']}/fold{k}" for k in range(len(folds.nets)))
                if won is ensemble else best["trial_id"]}
    return won, val
