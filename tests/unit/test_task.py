"""The task's selection metric: `auto` per task, an explicit one checked against what the task logs."""

from __future__ import annotations

import pytest

from medtune.config import SearchCfg
from medtune.errors import ConfigError
from medtune.task import Task, resolve_selection

BINARY, REGRESSION = Task("binary", ("normal", "abnormal")), Task("regression", ("radius",))


@pytest.mark.parametrize("task, metric, mode", [(BINARY, "val_auroc", "max"), (REGRESSION, "val_mae", "min"),
                                                (Task("multilabel", ("ring", "bar")), "val_auroc", "max")])
def test_auto_picks_the_tasks_metric_and_its_direction(task: Task, metric: str, mode: str) -> None:
    chosen = resolve_selection(SearchCfg(), task)
    assert (chosen.metric, chosen.mode) == (metric, mode)


def test_an_explicit_metric_keeps_its_own_direction() -> None:
    assert resolve_selection(SearchCfg(metric="val_r2"), REGRESSION).mode == "max"
    assert resolve_selection(SearchCfg(metric="val_loss"), BINARY).mode == "min"
    assert resolve_selection(SearchCfg(metric="val_auroc", mode="min"), BINARY).mode == "min"


def test_a_metric_the_task_does_not_log_is_one_line() -> None:
    with pytest.raises(ConfigError, match="search.metric: 'val_auroc' is not logged for a regression task") as info:
        resolve_selection(SearchCfg(metric="val_auroc"), REGRESSION)
    assert "\n" not in str(info.value) and "val_mae" in str(info.value)
