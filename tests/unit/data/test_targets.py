"""Label cells -> targets: each task's reading of a labels file, and the rejection of cells that are not labels."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medtune.data.ingest import ingest
from medtune.data.sample import write_synthetic
from medtune.data.targets import parse_cells, resolve_task, target_columns
from medtune.errors import ConfigError, DataError
from medtune.task import Task


def cells(column: list[str], **more: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"label": column, **more})


def test_classification_cells_reject_blanks_and_placeholders() -> None:
    parsed = parse_cells(cells(["normal", "", "n/a", "NaN", "pneumonia", "?"]), ["label"], "auto", "ignore")
    assert parsed["bad"].tolist() == [False, True, True, True, False, True]


def test_auto_task_from_the_number_of_classes() -> None:
    assert resolve_task(pd.Series(["yes", "no", "yes"]), "auto", ["label"]) == Task("binary", ("no", "yes"))
    assert resolve_task(pd.Series(["b", "a"]), "auto", ["label"], positive="a") == Task("binary", ("b", "a"))
    with pytest.raises(ConfigError, match="do not say which class is positive"):
        resolve_task(pd.Series(["b", "a"]), "auto", ["label"])
    assert resolve_task(pd.Series(list("abc")), "auto", ["label"]).kind == "multiclass"
    assert resolve_task(pd.Series(["no", "yes"]), "auto", ["label"], positive="no").names == ("yes", "no")
    with pytest.raises(ConfigError, match="binary, but the labels have 3 classes"):
        resolve_task(pd.Series(list("abc")), "binary", ["label"])
    with pytest.raises(ConfigError, match="'maybe' is not a label"):
        resolve_task(pd.Series(["no", "yes"]), "auto", ["label"], positive="maybe")
    with pytest.raises(DataError, match="need at least 2 classes"):
        resolve_task(pd.Series(["a", "a"]), "auto", ["label"])


def test_multilabel_cells_mask_blanks_follow_the_uncertain_policy_and_reject_other_values() -> None:
    table = cells(["1", "0", "-1", "", "2", ""], bar=["0", "1", "1", "1", "0", ""])
    ignore = parse_cells(table, ["label", "bar"], "auto", "ignore")
    assert ignore["bad"].tolist() == [False, False, False, False, True, True]  # "2", and nothing read at all
    assert math.isnan(ignore["value"][2][0]) and math.isnan(ignore["value"][3][0])
    assert parse_cells(table, ["label", "bar"], "auto", "one")["value"][2][0] == 1.0
    assert parse_cells(table, ["label", "bar"], "auto", "zero")["value"][2][0] == 0.0
    task = resolve_task(ignore["value"], "auto", ["label", "bar"])
    assert task == Task("multilabel", ("label", "bar"))
    stacked = np.array(list(target_columns(ignore["value"][:2], task)["targets"]), dtype=float)
    assert stacked.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_regression_cells_must_be_finite_numbers() -> None:
    parsed = parse_cells(cells(["3.5", "n/a", "abc", "inf", "-2"]), ["label"], "regression", "ignore")
    assert parsed["bad"].tolist() == [False, True, True, True, False]
    assert resolve_task(parsed["value"], "regression", ["label"]) == Task("regression", ("label",))
    with pytest.raises(ConfigError, match="takes one label column"):
        parse_cells(cells(["1"], b=["0"]), ["label", "b"], "regression", "ignore")


@pytest.mark.parametrize("task", ["multiclass", "multilabel", "regression"])
def test_ingest_reads_every_task_and_rejects_bad_labels_per_file(tmp_path: Path, hmac_key: bytes, task: str) -> None:
    raw, labels = tmp_path / "raw", tmp_path / "labels.csv"
    write_synthetic(raw, labels, n_patients=6, images_per_patient=2, image_size=16, seed=1, task=task)
    frame = pd.read_csv(labels, dtype=str)
    frame.iloc[0, 1] = "n/a" if task != "multilabel" else "7"
    frame.to_csv(labels, index=False)
    columns = list(frame.columns[1:])
    result = ingest(raw, str(labels), hmac_key, label_column=columns[0] if len(columns) == 1 else tuple(columns),
                    task="regression" if task == "regression" else "auto")
    assert result.task.kind == task
    assert result.rejected.to_dict("records") == [{"path": frame.iloc[0, 0], "reason": "bad_label"}]
    assert len(result.manifest) == 11 and result.fingerprint["task"]["kind"] == task
    if task == "multilabel":
        assert set(result.fingerprint["task"]["per_label"]) == {"ring", "bar"}
