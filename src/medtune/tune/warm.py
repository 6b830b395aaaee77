"""Warm start: the finished trials of earlier sweeps on the same data and split, as Optuna observations.

`search.warm_start: auto` reads them from MLflow when an earlier sweep has the same data, labels and split
hashes (`dvc exp run` after `dvc exp run` then does not start from scratch); a changed hash gives a cold
start unless a parent run id is named, which is taken whatever its hashes; `off` never warm-starts.
A logged trial whose values fall outside this sweep's space is left out: TPE may only learn from points
it could have proposed.
"""

from __future__ import annotations

from typing import Any

from medtune.config import ParamSpec, SearchCfg
from medtune.tracking.history import finished_trials, matching_sweeps
from medtune.tracking.sweep_log import SweepLogger
from medtune.tune.space import SearchSpace


def parse_logged(raw: dict[str, str], space: SearchSpace) -> dict[str, Any] | None:
    """MLflow's string params back to the space's types; None when one is missing or outside the space."""
    return space.point({spec.name: _typed(raw[spec.name], spec) for spec in space.specs if spec.name in raw})


def _typed(text: str, spec: ParamSpec) -> Any:
    if spec.choices is not None:
        return next((c for c in spec.choices if str(c) == text), text)
    try:
        return int(text) if spec.is_int else float(text)
    except ValueError:
        return text


def warm_points(logger: SweepLogger, search: SearchCfg,
                tags: dict[str, str]) -> tuple[list[tuple[dict[str, Any], float]], str]:
    """(config, best metric) pairs to tell the searcher first, and one line saying where they came from."""
    if search.warm_start == "off":
        return [], "warm start off"
    named = search.warm_start != "auto"
    parents = [search.warm_start] if named else matching_sweeps(logger.client, logger.experiment_id, tags,
                                                                    logger.parent_run_id)
    if not parents:
        return [], "cold start: no earlier sweep on the same data and split in MLflow"
    space = SearchSpace(search.space)
    points = [(config, value) for raw, value in finished_trials(logger.client, logger.experiment_id, parents,
                                                                 search.metric)
              if (config := parse_logged(raw, space)) is not None]
    where = f"run {search.warm_start}" if named else f"{len(parents)} earlier sweep(s) on the same data and split"
    return points, f"warm start: {len(points)} finished trials from {where}"
