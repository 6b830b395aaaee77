"""Every task end to end: the real `dvc repro` on a tiny synthetic DICOM cohort of each kind (multi-class,
multi-label, regression; binary is tests/integration/test_pipeline.py), then `medtune predict`.

The champion must beat a trivial baseline on the held-out test split (macro AUROC > 0.8; R² > 0.5), predict
must write the task's columns, and a file with a malformed label must be rejected with its reason.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest
from tests.integration._proc import run
from tests.integration._project import COHORT, make_project, merge

pytestmark = [pytest.mark.slow, pytest.mark.ray]

# Enough images and epochs for the small CNN to learn each synthetic finding (a ring's radius needs more
# pixels than its shape), one trial each: these tests are about the task, the search is tested elsewhere.
TASKS = {
    "multiclass": {"ingest": {"label_column": "label"}},
    "multilabel": {"ingest": {"label_column": ["ring", "bar"]}},
    "regression": {"ingest": {"label_column": "radius", "task": "regression"}, "preprocess": {"image_size": 32}},
}
SIZE = {"regression": 32}
FAST = {"train": {"epochs": 15, "width": 16, "depth": 3, "batch_size": 16, "lr": 0.005},
        "search": {"num_samples": 1, "max_concurrent_trials": 1, "grace_period": 15,
                   "space": {"lr": {"low": 0.004, "high": 0.006, "log": True}}}}
BAD_CELL = {"multiclass": "n/a", "multilabel": "2", "regression": "twelve"}


def spoil_one_label(project: Path, task: str) -> str:
    """Give the first file's label cell a value its task cannot read; returns that file's path."""
    labels = project / "data/labels.csv"
    rows = list(csv.reader(labels.open()))
    rows[1][-1] = BAD_CELL[task]
    with labels.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return rows[1][0]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_each_task_trains_registers_scores_and_predicts(tmp_path: Path, task: str) -> None:
    cohort = COHORT | {"task": task, "n_patients": 50, "images_per_patient": 4, "image_size": SIZE.get(task, 16)}
    project = make_project(tmp_path, cohort=cohort, extra=merge(FAST, TASKS[task]))
    spoiled = spoil_one_label(project, task)
    run(["dvc", "repro"], project)

    rejected = pd.read_csv(project / "reports/ingest/rejected.csv")
    assert dict(zip(rejected["path"], rejected["reason"])) == {spoiled: "bad_label"}
    assert json.loads((project / "data/processed/task.json").read_text())["kind"] == task

    metrics = json.loads((project / "reports/test/metrics.json").read_text())
    assert metrics["task"] == task
    if task == "regression":
        assert metrics["r2"] > 0.5, metrics
        assert metrics["mae_ci_low"] <= metrics["mae"] <= metrics["mae_ci_high"]
    else:
        assert metrics["auroc"] > 0.8, metrics
        group = "per_label" if task == "multilabel" else "per_class"
        names = ["ring", "bar"] if task == "multilabel" else ["blob", "cross", "ring"]
        assert sorted(metrics[group]) == sorted(names)

    out = project / "preds.csv"
    run(["medtune", "predict", "data/raw", "--out", str(out)], project)
    preds = pd.read_csv(out)
    expected = {"multiclass": {"prob_blob", "prob_cross", "prob_ring", "predicted"},
                "multilabel": {"prob_ring", "prob_bar", "pred_ring", "pred_bar"},
                "regression": {"predicted"}}[task]
    assert expected <= set(preds.columns)
    assert (preds["status"] == "ok").sum() == 200
