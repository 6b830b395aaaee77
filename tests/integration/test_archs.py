"""MONAI backbones through the real pipeline: `dvc repro` searching `train.arch` over convnet, resnet18 and
densenet121 at 64 px, the champion registered, `medtune predict` with it, and its Grad-CAM drawn.

Kept small: 48 images, three short trials, batch 16; the contracts, not accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from tests.integration._proc import run
from tests.integration._project import COHORT, make_project, set_params

pytestmark = [pytest.mark.slow, pytest.mark.ray]
ARCHS = ["convnet", "resnet18", "densenet121"]


def test_repro_searches_archs_registers_predicts_and_explains(tmp_path: Path) -> None:
    project = make_project(tmp_path, cohort=COHORT | {"image_size": 64})
    set_params(project, "preprocess", image_size=64)
    set_params(project, "search", num_samples=3, space={"arch": {"choices": ARCHS},
                                                        "lr": {"low": 0.001, "high": 0.01, "log": True}})
    repro = run(["dvc", "repro"], project, timeout=1800)
    assert "search.space samples arch, lr" in repro.stdout

    board = pd.read_csv(project / "reports/tune/leaderboard.csv")
    assert len(board) == 3 and set(board["param_arch"]) <= set(ARCHS)
    assert set(board["param_arch"]) - {"convnet"}, "no MONAI backbone was drawn"
    # Every backbone trained: none errored (ASHA may stop a beaten one after its first rung).
    assert board["stop_reason"].isin(["completed", "asha_stopped"]).all(), board[["param_arch", "stop_reason"]]
    assert (board["epochs_run"] >= 1).all()

    best = json.loads((project / "reports/tune/best.json").read_text())
    promotion = json.loads((project / "reports/promotion.json").read_text())
    assert promotion["promoted"]
    client = MlflowClient(f"sqlite:///{project / 'mlruns.db'}")
    champion = client.get_model_version_by_alias("medtune-classifier", "champion")
    assert json.loads(champion.tags["medtune.trial_params"])["arch"] == best["train"]["arch"]
    # Tune kept the three trials (search.ensemble_top_k: 3) for the top-k candidate: whichever won on val,
    # a mix of families, is what predict and Grad-CAM below run.
    assert len(best["top"]) == 3 and best["top"][0]["trial_id"] == best["trial_id"]
    assert sorted(p.name for p in (project / "models/best/top").iterdir()) == ["2.pt", "3.pt"]
    won = champion.tags["medtune.selection"]
    members = ",".join(t["trial_id"] for t in best["top"]) if won == "top_k_ensemble" else best["trial_id"]
    assert won in ("best_trial", "top_k_ensemble") and champion.tags["medtune.members"] == members

    out = tmp_path / "preds.csv"
    run(["medtune", "predict", "data/raw", "--out", str(out)], project)
    preds = pd.read_csv(out)
    ok = preds[preds["status"] == "ok"]
    assert len(ok) == 48 and ok["prob_abnormal"].between(0, 1).all()

    gradcam = project / "reports/test/gradcam.png"
    assert gradcam.is_file() and gradcam.stat().st_size > 10_000
