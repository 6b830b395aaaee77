"""Test-report pieces beyond the headline metrics: scoring at the stored threshold and per-group breakdowns.

Everything here takes predictions and a threshold that came with the model (chosen on validation); none of
it fits anything on the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medtune.evaluate import binary_metrics, bootstrap_auroc_ci, multiclass_metrics
from medtune.jsonio import write_json

BREAKDOWN_COLUMNS = ("manufacturer", "modality")


def score_test(y: np.ndarray, probs: np.ndarray, patient_keys: list[str], meta: dict[str, Any],
               n_boot: int, seed: int) -> dict[str, Any]:
    """Test metrics at the model's stored threshold (`meta["threshold"]`), AUROC CI resampling patients."""
    if probs.shape[1] != 2:
        return multiclass_metrics(y, probs)
    prob, threshold = probs[:, 1], float(meta["threshold"])
    metrics = binary_metrics(y, prob, threshold)
    low, high = bootstrap_auroc_ci(y, prob, patient_keys, n_boot, seed)
    return metrics | {"auroc_ci_low": low, "auroc_ci_high": high, "threshold": threshold}


def breakdown(rows: pd.DataFrame, y: np.ndarray, probs: np.ndarray, threshold: float) -> pd.DataFrame:
    """n, positives, AUROC (both classes present, else NaN) and accuracy per manufacturer and per modality.

    `rows` are the index rows of the scored samples, in prediction order.
    """
    pred = (probs[:, 1] >= threshold).astype(int) if probs.shape[1] == 2 else probs.argmax(axis=1)
    records = []
    for column in BREAKDOWN_COLUMNS:
        values = rows[column].fillna("").astype(str).replace("", "unknown") if column in rows else None
        if values is None:
            continue
        for group in sorted(values.unique()):
            at = (values == group).to_numpy()
            records.append({"column": column, "group": group, **_group_metrics(y[at], probs[at], pred[at])})
    return pd.DataFrame(records, columns=["column", "group", "n", "n_pos", "auroc", "accuracy"])


def _group_metrics(y: np.ndarray, probs: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    binary = probs.shape[1] == 2
    if binary:
        auroc = binary_metrics(y, probs[:, 1], 0.5)["auroc"] if len(np.unique(y)) == 2 else float("nan")
    else:
        auroc = multiclass_metrics(y, probs)["auroc"] if len(np.unique(y)) == probs.shape[1] else float("nan")
    return {"n": len(y), "n_pos": int((y == 1).sum()) if binary else None,
            "auroc": auroc, "accuracy": float((pred == y).mean())}


def write_breakdown(table: pd.DataFrame, out_dir: Path) -> dict[str, Path]:
    """breakdown.csv (one row per group) and breakdown.json ({column: {group: metrics}}, NaN as null)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv, js = out_dir / "breakdown.csv", out_dir / "breakdown.json"
    table.to_csv(csv, index=False)
    nested: dict[str, dict[str, Any]] = {}
    for record in table.to_dict("records"):
        metrics = {k: (None if isinstance(v, float) and np.isnan(v) else v)
                   for k, v in record.items() if k not in ("column", "group")}
        nested.setdefault(record["column"], {})[record["group"]] = metrics
    write_json(js, nested)
    return {"breakdown.csv": csv, "breakdown.json": js}
