"""The walking skeleton end to end: real `dvc repro` -> champion in the MLflow registry -> test once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.integration._proc import run

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_dvc_repro_registers_a_champion_and_scores_test_once(project: Path) -> None:
    run(["dvc", "repro"], project)

    metrics = json.loads((project / "reports/test/metrics.json").read_text())
    assert 0.0 <= metrics["auroc"] <= 1.0
    assert {"accuracy", "balanced_accuracy", "sensitivity", "specificity"} <= set(metrics)

    client = MlflowClient(f"sqlite:///{project / 'mlruns.db'}")
    champion = client.get_model_version_by_alias("medtune-classifier", "champion")
    assert champion.tags["medtune.split_hash"] == json.loads(
        (project / "reports/tune/best.json").read_text())["split_hash"]
    experiment = client.get_experiment_by_name("medtune")
    sweep = client.search_runs([experiment.experiment_id], filter_string="tags.`medtune.kind` = 'trial'")
    assert len(sweep) == 2  # one nested child run per trial

    shown = run(["dvc", "metrics", "show"], project).stdout
    assert "auroc" in shown

    # A second scoring of the same (model version, split) is refused with one clear line.
    again = run(["medtune", "test"], project, check=False)
    assert again.returncode == 2
    assert again.stderr.startswith("error: test split") and "already scored" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1

    # An override is allowed with a reason, and recorded next to the first scoring.
    run(["medtune", "test", "--rescore", "--reason", "integration test override"], project)
    entries = json.loads((project / "reports/test/ledger.json").read_text())["entries"]
    assert [e["rescore_reason"] for e in entries] == [None, "integration test override"]
