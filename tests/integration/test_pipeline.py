"""The walking skeleton end to end: real `dvc repro` -> champion in the MLflow registry -> test once.

The shared `finished` project (tests/integration/_project.py) is the `dvc repro`; these tests read it,
and the one that rescores and re-runs with changed params runs after every reader.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from tests.integration._proc import run
from tests.integration._project import Finished, set_params

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_dvc_repro_registers_a_champion_and_scores_test_once(finished: Finished) -> None:
    project = finished.path
    metrics = json.loads((project / "reports/test/metrics.json").read_text())
    # The champion learned the signal: on its 6 held-out test patients (12 images) the AUROC clears 0.7, 0.2
    # above chance. Six patients cannot support a CI that excludes chance every time the code changes (runs
    # gave [0.61, 1.0] and [0.41, 1.0]), so the report must say the CI rests on very few patients instead.
    assert metrics["auroc"] >= 0.7, metrics
    assert metrics["auroc_ci_low"] <= metrics["auroc"] and "rests on very few patients" in metrics["warning"]
    assert {"accuracy", "balanced_accuracy", "sensitivity", "specificity", "f1"} <= set(metrics)
    assert all(metrics[f"{k}_ci_low"] <= metrics[k] <= metrics[f"{k}_ci_high"] for k in ("auroc", "accuracy", "f1"))
    # Calibration fitted on validation, applied on test: ECE and Brier before (raw) and after.
    assert metrics["calibration"] == "temperature" and {"ece", "ece_raw", "brier", "brier_raw"} <= set(metrics)

    client = MlflowClient(f"sqlite:///{project / 'mlruns.db'}")
    champion = client.get_model_version_by_alias("medtune-classifier", "champion")
    best = json.loads((project / "reports/tune/best.json").read_text())
    assert champion.tags["medtune.split_hash"] == best["split_hash"]
    # What the best trial trained with, for promote's fold refits: its batch and the epochs it ran, raised
    # from train.epochs (3) to the planned 30 optimizer steps.
    board = pd.read_csv(project / "reports/tune/leaderboard.csv")
    ran = int(board.loc[board["trial_id"] == best["trial_id"], "epochs_run"].iloc[0])
    assert best["train"]["epochs"] == ran > 3
    experiment = client.get_experiment_by_name("medtune")
    sweep = client.search_runs([experiment.experiment_id], filter_string="tags.`medtune.kind` = 'trial'")
    assert len(sweep) == 2  # one nested child run per trial

    # Narrow enough to read: the test report and the sweep summary, not the split's leakage counts.
    shown = run(["dvc", "metrics", "show"], project).stdout
    assert "auroc" in shown and "reports/test/metrics.json" in shown
    assert "leakage" not in shown and "near_duplicate" not in shown

    # The tune stage says which train: values the search space overrides (the tiny space: 3 keys).
    overridden = "tune: search.space samples dropout, lr, optimizer: their train: values are not used"
    assert overridden in finished.repro.stdout

    # The quiet console: the plan and why, one line per finished trial, the summary last; no Ray tables.
    tune_out = finished.repro.stdout.split("Running stage 'tune'")[1].split("Running stage 'promote'")[0]
    lines = [line for line in tune_out.splitlines() if line.strip()]
    assert len(lines) < 60, tune_out
    assert any(line.startswith("tune: planned: ") for line in lines)
    assert sum(line.startswith("tune: trial ") for line in lines) == 2
    assert lines[-1].startswith("tune: 2 trials") or "tune: 2 trials" in tune_out
    assert "Trial status" not in tune_out and "Token authentication" not in finished.repro.stderr

    # The report: threshold from validation (stored with the model), split hash, breakdown, Grad-CAM, plots.
    assert metrics["threshold"] == pytest.approx(float(champion.tags["medtune.threshold"]), abs=1e-6)
    assert metrics["split_hash"] == champion.tags["medtune.split_hash"]

    # split.folds: auto (40 patients -> 5 folds): promote refit the best config per fold and recorded the
    # out-of-fold estimate with its CI, which candidate won on the val patients, and the members.
    splits = json.loads((project / "data/splits/splits.json").read_text())
    assert len(splits["folds"]) == 5 and "promote: fold 5/5 refit" in finished.repro.stdout
    assert champion.tags["medtune.folds"] == "5" and champion.tags["medtune.threshold_rule"] == "youden"
    oof = [float(champion.tags[f"medtune.val_cv_auroc_oof{s}"]) for s in ("_ci_low", "", "_ci_high")]
    assert oof == sorted(oof) and 0.0 <= oof[0] and oof[2] <= 1.0
    assert champion.tags["medtune.selection"] in ("best_trial", "fold_ensemble")
    breakdown = json.loads((project / "reports/test/breakdown.json").read_text())
    assert set(breakdown) == {"manufacturer", "modality"}
    assert sum(g["n"] for g in breakdown["manufacturer"].values()) == metrics["n"]
    assert (project / "reports/test/gradcam.png").read_bytes()[:4] == b"\x89PNG"
    run(["dvc", "plots", "show"], project)
    assert (project / "dvc_plots/index.html").is_file()

    # A second scoring of the same (model version, split) is refused with one clear line.
    again = run(["medtune", "test"], project, check=False)
    assert again.returncode == 2
    assert again.stderr.startswith("error: test split") and "already scored" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_rescore_then_a_losing_challenger_keeps_the_report(finished_to_change: Finished) -> None:
    project = finished_to_change.path
    client = MlflowClient(f"sqlite:///{project / 'mlruns.db'}")
    metrics = json.loads((project / "reports/test/metrics.json").read_text())

    # An override is allowed with a reason, and recorded next to the first scoring.
    run(["medtune", "test", "--rescore", "--reason", "integration test override"], project)
    entries = json.loads((project / "reports/test/ledger.json").read_text())["entries"]
    assert [e["rescore_reason"] for e in entries] == [None, "integration test override"]
    assert {e["split_hash"] for e in entries} == {metrics["split_hash"]}

    # A challenger that loses the gate: `dvc repro` re-runs promote (champion stays) and test, which keeps
    # the recorded report of the unchanged champion instead of failing, and rescores nothing.
    set_params(project, "registry", min_delta=1.0)
    rerun = run(["dvc", "repro"], project)
    assert "champion stays" in json.loads((project / "reports/promotion.json").read_text())["reason"]
    assert "was already scored; its report stands" in rerun.stdout  # the test stage's --skip-scored line
    assert str(client.get_model_version_by_alias("medtune-classifier", "champion").version) == "1"
    assert json.loads((project / "reports/test/metrics.json").read_text())["model_version"] == 1
    assert len(json.loads((project / "reports/test/ledger.json").read_text())["entries"]) == 2

    # Losing the ledger file does not reopen the test set: the model version's tag still refuses.
    (project / "reports/test/ledger.json").unlink()
    again = run(["medtune", "test"], project, check=False)
    assert again.returncode == 2 and "already scored" in again.stderr


def test_tune_and_promote_run_without_test_pixels(project: Path) -> None:
    """Remove every test image from images.npy: tune and promote still run; only `test` needs them."""
    import numpy as np
    import pandas as pd

    run(["dvc", "repro", "split"], project)
    processed = project / "data/processed"
    index = pd.read_parquet(processed / "index.parquet")
    test_ids = set(json.loads((project / "data/splits/splits.json").read_text())["test"])
    is_test = index["sample_id"].isin(test_ids).to_numpy()
    images = np.load(processed / "images.npy")
    kept = images[index.loc[~is_test, "row"].to_numpy()]
    np.save(processed / "images.npy", kept)
    index.loc[~is_test, "row"] = np.arange(len(kept))
    index.loc[is_test, "row"] = len(kept) + np.arange(is_test.sum())  # past the end: unreadable
    index.to_parquet(processed / "index.parquet", index=False)

    run(["medtune", "tune"], project)
    run(["medtune", "promote"], project)
    assert json.loads((project / "reports/promotion.json").read_text())
    refused = run(["medtune", "test"], project, check=False)  # the poison is real: test cannot score
    assert refused.returncode == 2 and "points at row" in refused.stderr
