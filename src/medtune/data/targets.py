"""Label cells -> training targets for each task; a cell that cannot be a target rejects its file.

A blank, "n/a" or a word in a numeric column is never coerced into a class or a number: the file is
rejected with reason `bad_label` and counted, like any other unusable file. Multilabel cells are 0/1,
blank means "not read" (masked out of the loss), and CheXpert's -1 ("uncertain") follows
`ingest.uncertain`: ignore (masked), zero or one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from medtune.choices import NEGATIVE_LABELS
from medtune.errors import ConfigError, DataError
from medtune.task import Task

MISSING = {"", "n/a", "na", "nan", "none", "null", "?", "-"}  # cells that say "no label here"
_ONE, _ZERO, _UNSURE = {"1", "1.0", "true", "yes"}, {"0", "0.0", "false", "no"}, {"-1", "-1.0"}


def cell_kind(task: str, columns: list[str]) -> str:
    """How cells are read before classes are known: classification, multilabel or regression."""
    if task == "multilabel" or len(columns) > 1:
        if task not in ("auto", "multilabel"):
            raise ConfigError(f"params.yaml: ingest.task: {task!r} takes one label column, got {len(columns)}")
        return "multilabel"
    return "regression" if task == "regression" else "classification"


def parse_cells(table: pd.DataFrame, columns: list[str], task: str, uncertain: str) -> pd.DataFrame:
    """Per labels row: `value` (a class name, a float, or a tuple of 0/1/NaN), a display `label`, `bad`."""
    kind = cell_kind(task, columns)
    cells = table[columns].astype(str).apply(lambda col: col.str.strip())
    if kind == "multilabel":
        values = [tuple(_binary_cell(c, uncertain) for c in row) for row in cells.itertuples(index=False)]
        bad = [any(v is None for v in row) or all(v is not None and math.isnan(v) for v in row) for row in values]
        labels = ["|".join(n for n, v in zip(columns, row) if v == 1.0) or "none" if not b else ""
                  for row, b in zip(values, bad)]
    elif kind == "regression":
        values = [_number(c) for c in cells[columns[0]]]
        bad = [v is None for v in values]
        labels = list(cells[columns[0]])
    else:
        labels = list(cells[columns[0]])
        bad = [label.lower() in MISSING for label in labels]
        values = labels
    return pd.DataFrame({"label": labels, "value": values, "bad": bad}, index=table.index)


def _binary_cell(cell: str, uncertain: str) -> float | None:
    """1.0, 0.0, NaN (not read, or uncertain and ignored) or None (not a multilabel value)."""
    low = cell.lower()
    if low in _ONE:
        return 1.0
    if low in _ZERO:
        return 0.0
    if low in _UNSURE:
        return {"ignore": math.nan, "zero": 0.0, "one": 1.0}[uncertain]
    return math.nan if low in MISSING else None


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def resolve_task(values: pd.Series, task: str, columns: list[str], positive: str | None = None) -> Task:
    """The task of the accepted files' labels: `auto` becomes binary (2 classes) or multiclass (more).

    Binary classes are ordered (negative, positive) by target_mapping.
    """
    kind = cell_kind(task, columns)
    if kind == "multilabel":
        return Task("multilabel", tuple(columns))
    if kind == "regression":
        return Task("regression", (columns[0],))
    classes = sorted(values.astype(str).unique())
    if len(classes) < 2:
        raise DataError(f"labels: every usable image has the label {classes[0]!r}; need at least 2 classes")
    kind = task if task != "auto" else ("binary" if len(classes) == 2 else "multiclass")
    if kind == "binary" and len(classes) != 2:
        raise ConfigError(f"params.yaml: ingest.task: binary, but the labels have {len(classes)} classes "
                          f"({', '.join(classes[:6])}); use multiclass or auto")
    mapping = target_mapping(classes, positive)
    return Task(kind, tuple(sorted(classes, key=mapping.__getitem__)))


def target_columns(values: pd.Series, task: Task) -> dict[str, np.ndarray | pd.Series]:
    """Manifest columns for the targets: `target` (class index or float) or `targets` (one list per row)."""
    if task.kind == "multilabel":
        return {"targets": pd.Series([list(v) for v in values], index=values.index, dtype=object)}
    if task.kind == "regression":
        return {"target": values.astype(float).to_numpy()}
    index = {name: i for i, name in enumerate(task.names)}
    return {"target": values.astype(str).map(index).astype(int).to_numpy()}


def target_summary(manifest: pd.DataFrame, task: Task) -> dict:
    """The fingerprint's view of the targets: the task, and counts per class or label, or a distribution."""
    out: dict = {"kind": task.kind, "names": list(task.names)}
    if task.kind == "multilabel":
        stacked = np.array(list(manifest["targets"]), dtype=float)
        out["per_label"] = {name: {"positive": int(np.nansum(stacked[:, i] == 1)),
                                   "negative": int(np.nansum(stacked[:, i] == 0)),
                                   "missing": int(np.isnan(stacked[:, i]).sum())}
                            for i, name in enumerate(task.names)}
    elif task.kind == "regression":
        values = manifest["target"].astype(float)
        out["distribution"] = {k: float(v) for k, v in values.describe().items() if k != "count"}
    else:
        out["per_class"] = {name: int((manifest["target"] == i).sum()) for i, name in enumerate(task.names)}
    if task.kind == "binary":
        out["positive_label"] = task.names[1]
    return out


def target_mapping(labels: Iterable[str], positive_label: str | None = None) -> dict[str, int]:
    """Label -> target: with two classes the negative is 0 and the positive 1; more classes in sorted order.

    The positive class is `positive_label` (ingest.positive_label) or, when unset, the one the names make
    obvious (the other is in choices.NEGATIVE_LABELS); otherwise ConfigError asks for the parameter. The
    sorted order alone would make `no_contrast` positive against `contrast`.
    """
    classes = sorted({str(label) for label in labels})
    where = "params.yaml: ingest.positive_label"
    if positive_label is not None and str(positive_label) not in classes:
        raise ConfigError(f"{where}: {str(positive_label)!r} is not a label in the labels file "
                          f"(labels: {', '.join(classes)})")
    if len(classes) != 2:
        if positive_label is not None and len(classes) > 2:
            raise ConfigError(f"{where}: applies to two classes, but there are {len(classes)} "
                              f"({', '.join(classes)}); leave it unset")
        return {c: i for i, c in enumerate(classes)}
    positive = str(positive_label) if positive_label is not None else obvious_positive(classes)
    if positive is None:
        raise ConfigError(f"{where}: labels {classes[0]!r} and {classes[1]!r} do not say which class is "
                          "positive; set it to one of them")
    return {c: int(c == positive) for c in classes}


def obvious_positive(classes: list[str]) -> str | None:
    """Of two labels, the one that is not a negative word when exactly one is (normal/abnormal -> abnormal)."""
    negative = [c.strip().lower() in NEGATIVE_LABELS for c in classes]
    return classes[negative.index(False)] if sum(negative) == 1 else None
