"""Per-site breakdown of test predictions: the task's headline metric with its patient CI per manufacturer and modality.

Everything here takes predictions and a threshold that came with the model (chosen on validation); none of
it fits anything on the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from medtune.evaluate.bootstrap import patient_bootstrap
from medtune.evaluate.metrics import task_metrics
from medtune.jsonio import write_json, write_table
from medtune.task import Task

BREAKDOWN_COLUMNS = ("manufacturer", "modality")


def breakdown(rows: pd.DataFrame, task: Task, y: np.ndarray, out: np.ndarray, threshold: Any,
              patient_keys: list[str], n_boot: int, seed: int) -> pd.DataFrame:
    """The task's headline metric (AUROC; MAE for regression) with its patient CI, and accuracy where it
    applies, per manufacturer and per modality. `rows` are the index rows of the scored samples."""
    main = task.score_name
    groups, names = np.asarray(patient_keys), list(task.names)
    records = []
    for column in BREAKDOWN_COLUMNS:
        if column not in rows:
            continue
        values = rows[column].fillna("").astype(str).replace("", "unknown").to_numpy()
        for group in sorted(set(values)):
            at = np.flatnonzero(values == group)

            def score(idx: np.ndarray, at: np.ndarray = at) -> dict[str, Any]:
                return task_metrics(task.kind, y[at][idx], out[at][idx], threshold, names)

            full = score(np.arange(len(at)))
            low, high = patient_bootstrap(score, groups[at], n_boot, seed).get(main, (np.nan, np.nan))
            records.append({"column": column, "group": group, "n": len(at),
                            "n_patients": len(set(groups[at])), main: full[main], f"{main}_ci_low": low,
                            f"{main}_ci_high": high, "accuracy": full.get("accuracy", np.nan)})
    return pd.DataFrame(records)


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
