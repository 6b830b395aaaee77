"""What the labels ask the model to predict: the task, its output names, and how it is scored.

One small value travels from ingest (which reads it off the labels file) through every stage to the
registered model: data/processed/task.json on disk, `NetSpec.task` in a network, `meta["task"]` in a model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from medtune.config import SearchCfg
from medtune.errors import ConfigError
from medtune.jsonio import read_json, write_json

# Epoch metrics each task logs besides train_loss and val_loss (models/heads.py computes them).
METRICS = {"binary": ("val_auroc", "val_acc"), "multiclass": ("val_auroc", "val_acc"),
           "multilabel": ("val_auroc", "val_acc"), "regression": ("val_mae", "val_rmse", "val_r2")}
LOWER_IS_BETTER = ("val_mae", "val_rmse", "val_loss")
# task -> (selection metric, mode): threshold-free and defined on any validation split of the task.
SELECTION = {"binary": ("val_auroc", "max"), "multiclass": ("val_auroc", "max"),
             "multilabel": ("val_auroc", "max"), "regression": ("val_mae", "min")}


@dataclass(frozen=True)
class Task:
    """`kind` is one of choices.TASKS; `names` the outputs: classes in target order (binary: negative,
    positive), one name per label (multilabel), or the target column (regression)."""

    kind: str
    names: tuple[str, ...]

    @property
    def num_outputs(self) -> int:
        """Network outputs: one logit for binary and regression, one per class or label otherwise."""
        return 1 if self.kind in ("binary", "regression") else len(self.names)

    @property
    def classification(self) -> bool:
        return self.kind != "regression"

    @property
    def metric(self) -> str:
        return SELECTION[self.kind][0]

    @property
    def mode(self) -> str:
        return SELECTION[self.kind][1]

    @property
    def score_name(self) -> str:
        """The selection metric's key among a split's scores (`binary_metrics` and kin): `metric` without `val_`."""
        return self.metric.removeprefix("val_")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Task:
        return cls(str(data["kind"]), tuple(str(n) for n in data["names"]))


def resolve_selection(search: SearchCfg, task: Task) -> SearchCfg:
    """search.metric/mode with `auto` replaced by the task's selection metric and its direction; a metric
    the task does not log is one line (a regression has no val_auroc)."""
    metric = task.metric if search.metric == "auto" else search.metric
    logged = (*METRICS[task.kind], "val_loss")
    if metric not in logged:
        raise ConfigError(f"search.metric: {metric!r} is not logged for a {task.kind} task; use auto or one of "
                          f"{', '.join(logged)}")
    mode = search.mode if search.mode != "auto" else ("min" if metric in LOWER_IS_BETTER else "max")
    return dataclasses.replace(search, metric=metric, mode=mode)


def write_task(task: Task, path: Path) -> None:
    write_json(path, task.to_dict(), sort_keys=False)


def read_task(path: Path) -> Task:
    return Task.from_dict(read_json(path, "task description (ingest stage)"))
