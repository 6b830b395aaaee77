"""Per-site breakdown of test predictions: n, positives, AUROC and accuracy per manufacturer and modality.

Everything here takes predictions and a threshold that came with the model (chosen on validation); none of
it fits anything on the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medtune.evaluate.metrics import binary_metrics, multiclass_metrics
from medtune.jsonio import write_json, write_table

BREAKDOWN_COLUMNS = ("manufacturer", "modality")


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
    write_table(table, csv)
    nested: dict[str, dict[str, Any]] = {}
    for record in table.to_dict("records"):
        metrics = {k: (None if isinstance(v, float) and np.isnan(v) else v)
                   for k, v in record.items() if k not in ("column", "group")}
        nested.setdefault(record["column"], {})[record["group"]] = metrics
    write_json(js, nested)
    return {"breakdown.csv": csv, "breakdown.json": js}
