"""Per-site breakdown of test predictions."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from medtune.evaluate.breakdown import breakdown, write_breakdown
from medtune.task import Task


def test_breakdown_by_manufacturer_and_modality(tmp_path) -> None:
    rows = pd.DataFrame({"manufacturer": ["A", "A", "A", "A", "B", "B", None],
                         "modality": ["CR", "CR", "DX", "DX", "DX", "DX", "CR"]})
    y = np.array([1, 0, 1, 0, 1, 1, 0])
    prob = np.array([0.9, 0.2, 0.4, 0.6, 0.7, 0.3, 0.1])
    patients = [f"p{i}" for i in range(7)]
    table = breakdown(rows, Task("binary", ("normal", "abnormal")), y, prob, 0.5, patients, n_boot=100, seed=0)
    a = table[(table["column"] == "manufacturer") & (table["group"] == "A")].iloc[0]
    assert (a["n"], a["n_patients"], a["auroc"], a["accuracy"]) == (4, 4, 0.75, 0.5)
    assert a["auroc_ci_low"] <= 0.75 <= a["auroc_ci_high"]
    b = table[(table["column"] == "manufacturer") & (table["group"] == "B")].iloc[0]
    assert math.isnan(b["auroc"]) and b["accuracy"] == 0.5  # one class only: AUROC undefined
    assert set(table.loc[table["column"] == "manufacturer", "group"]) == {"A", "B", "unknown"}
    assert table.loc[table["column"] == "modality", "n"].sum() == 7
    files = write_breakdown(table, tmp_path)
    nested = json.loads(files["breakdown.json"].read_text())
    assert nested["manufacturer"]["B"]["auroc"] is None and nested["modality"]["CR"]["n"] == 3
    assert len(pd.read_csv(files["breakdown.csv"])) == len(table)
