"""Promote's candidates on a tiny learnable cohort: the K fold refits give one out-of-fold prediction per
train+val sample, the top-k trials of different shapes average into one network, each ensemble loads back
through the registered pyfunc, and the choice is recorded."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from tests.unit.test_train import FAST, write_square_cohort

from medtune.config import Params
from medtune.data.datamodule import load_split, load_train_data
from medtune.data.folds import assign_folds
from medtune.models.ensemble import EnsembleNet
from medtune.models.inference import predict_proba
from medtune.task import read_task
from medtune.tracking.pyfunc import MedtuneModel, write_model_files
from medtune.train import fit
from medtune.tune.candidates import Candidate, choose_candidate, refit_folds, top_k_candidate

CFG = dataclasses.replace(FAST, epochs=3)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    torch.set_num_threads(1)
    root, splits = write_square_cohort(tmp_path_factory.mktemp("processed"))
    index = pd.read_parquet(root / "index.parquet")
    return root, splits | {"folds": assign_folds(index, splits, 3, seed=0)}


def test_fold_refits_predict_each_train_val_sample_once_and_load_back_as_one_model(cohort, tmp_path: Path) -> None:
    root, splits = cohort
    task = read_task(root / "task.json")
    folds = refit_folds(CFG, root, splits, task, tta=False)
    assert sorted(folds.ids) == sorted(splits["train"] + splits["val"]) and len(folds.nets) == 3
    for k, held in enumerate(splits["folds"]):
        at = [folds.ids.index(s) for s in held]
        images = load_split(root, {"val": held}, "val").x
        np.testing.assert_allclose(folds.oof[at], predict_proba(folds.nets[k], images), atol=1e-6)
    # The K fold models as one registered model: logits averaged, weights of all K stored and loaded back.
    ensemble = EnsembleNet(folds.nets).eval()
    loaded = register_like_promote(folds.spec, ensemble.state_dict(), {"members": 3, "threshold": 0.5}, tmp_path)
    x = torch.from_numpy(np.asarray(load_split(root, splits, "val").x[:6]))
    with torch.no_grad():
        mean_logit = torch.stack([net(x) for net in folds.nets]).mean(0)[:, 0]
    np.testing.assert_allclose(loaded.raw_outputs(x.numpy()), torch.sigmoid(mean_logit).numpy(), atol=1e-6)
    assert loaded.predict(None, x.numpy())["predicted"].isin(["plain", "square"]).all()


def test_promote_candidate_is_chosen_on_val_patients_and_the_ensemble_loads_back(cohort, tmp_path: Path) -> None:
    root, splits = cohort
    task = read_task(root / "task.json")
    single = fit(CFG, load_train_data(root, splits), accelerator="cpu")
    best = {"train": dataclasses.asdict(CFG), "trial_id": "t1"}
    chosen, val = choose_candidate(Params(), best, {"net": single.net, "state_dict": single.state_dict}, root,
                                   splits, task)
    metrics = chosen.choice.metrics
    assert {"cv_auroc_oof", "cmp_auroc_best_trial_on_val", "cmp_auroc_oof_on_val"} <= set(metrics)
    assert metrics["cv_auroc_oof_ci_low"] <= metrics["cv_auroc_oof"] <= metrics["cv_auroc_oof_ci_high"]
    assert metrics["cv_auroc_oof"] > 0.7  # the square is learnable: the OOF estimate says so
    ensemble_won = metrics["cmp_auroc_oof_on_val"] >= metrics["cmp_auroc_best_trial_on_val"]
    assert chosen.selection == ("fold_ensemble" if ensemble_won else "best_trial")
    assert chosen.tags["medtune.selection"] == chosen.selection and chosen.tags["medtune.folds"] == "3"
    if ensemble_won:
        assert chosen.members == 3 and chosen.tags["medtune.members"] == "t1/fold0,t1/fold1,t1/fold2"
        assert metrics["auroc"] == pytest.approx(metrics["cv_auroc_oof"])  # the estimate is out-of-fold
    loaded = register_like_promote(chosen.spec, chosen.state_dict, chosen.inference, tmp_path)
    x = np.asarray(val.x[:8])
    np.testing.assert_allclose(loaded.raw_outputs(x), predict_proba(chosen.network, x), atol=1e-6)


def test_top_k_trials_become_one_candidate_only_when_better_on_val(cohort, tmp_path: Path) -> None:
    root, splits = cohort
    splits = {k: v for k, v in splits.items() if k != "folds"}
    task, data = read_task(root / "task.json"), load_train_data(root, splits)
    configs = [CFG, dataclasses.replace(CFG, depth=3, width=4, residual=True, lr=1e-2)]  # two shapes
    top = []
    for rank, cfg in enumerate(configs, start=1):
        result = fit(cfg, data, accelerator="cpu")
        torch.save({"net": result.net, "state_dict": result.state_dict, "epoch": 2}, tmp_path / f"{rank}.pt")
        top.append({"trial_id": f"t{rank}", "value": 0.0, "checkpoint": str(tmp_path / f"{rank}.pt")})
    first = torch.load(tmp_path / "1.pt", weights_only=True)
    best = {"train": dataclasses.asdict(CFG), "trial_id": "t1", "top": top}
    chosen, val = choose_candidate(Params(), best, first, root, splits, task)
    metrics = chosen.choice.metrics
    ensemble_won = metrics["cmp_auroc_top_k_on_val"] > metrics["cmp_auroc_best_trial_on_val"]  # a tie: single
    assert chosen.selection == ("top_k_ensemble" if ensemble_won else "best_trial")
    assert chosen.tags["medtune.members"] == ("t1,t2" if ensemble_won else "t1")
    assert metrics["auroc"] == metrics["cmp_auroc_top_k_on_val" if ensemble_won else "cmp_auroc_best_trial_on_val"]

    # Against a single network that does worse on val, the ensemble of both shapes is registered and loads back.
    weaker = dataclasses.replace(chosen.choice, metrics={"auroc": -1.0})
    ensemble = top_k_candidate(Params(), best, Candidate(chosen.network, chosen.spec, weaker, "best_trial"), val, task)
    assert ensemble.selection == "top_k_ensemble" and ensemble.members == 2
    assert [spec["depth"] for spec in ensemble.spec] == [2, 3]
    loaded = register_like_promote(ensemble.spec, ensemble.state_dict, ensemble.inference, tmp_path / "model")
    x = np.asarray(val.x[:8])
    np.testing.assert_allclose(loaded.raw_outputs(x), predict_proba(ensemble.network, x), atol=1e-6)

    # ensemble_top_k: 1 keeps one trial: the best is the candidate, compared with nothing.
    alone = choose_candidate(Params(), best | {"top": top[:1]}, first, root, splits, task)[0]
    assert alone.selection == "best_trial" and "cmp_auroc_top_k_on_val" not in alone.choice.metrics


def register_like_promote(spec: dict, state: dict, inference: dict, out: Path) -> MedtuneModel:
    meta = {"preprocess": {"image_size": 16}, "task": {"kind": "binary", "names": ["plain", "square"]}, **inference}
    loaded = MedtuneModel()
    loaded.load_context(SimpleNamespace(artifacts=write_model_files(out, spec, state, meta)))
    return loaded
