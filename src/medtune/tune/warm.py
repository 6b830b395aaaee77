"""Warm start: the finished trials of earlier sweeps on the same data and split, as Optuna observations.

`search.warm_start: auto` reads them from MLflow when an earlier sweep has the same data, labels and split
hashes (`dvc exp run` after `dvc exp run` then does not start from scratch); a changed hash gives a cold
start unless a parent run id is named, which is taken whatever its hashes; `off` never warm-starts.
A logged trial whose values fall outside this sweep's space is left out: TPE may only learn from points
it could have proposed.

The earlier sweeps' best configs also run again first (`REPLAYS`, best first): TPE told 60 results still
explores before it exploits, and in bench/hpo.py a warm sweep often spent more than a cold one before
matching the best it was told. A replay is a new measurement only when the trial would train differently
(another seed, epochs budget or train default); one that would retrace a logged run is not queued.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from medtune.config import ParamSpec, SearchCfg, TrainCfg
from medtune.tracking.history import finished_trials, matching_sweeps
from medtune.tracking.sweep_log import SweepLogger, logged_params, trial_params
from medtune.tune.space import SearchSpace

REPLAYS = 3  # earlier best configs a warm sweep runs first: the incumbent and two runners-up


@dataclass(frozen=True)
class WarmStart:
    """What a sweep learns from earlier ones: finished trials to tell TPE, configs to run first, and a line
    saying where they came from."""

    points: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    replays: list[dict[str, Any]] = field(default_factory=list)
    note: str = "cold start"


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


def best_configs(points: list[tuple[dict[str, Any], float]], mode: str, retraced: list[dict[str, Any]],
                 k: int = REPLAYS) -> list[dict[str, Any]]:
    """The `k` best distinct configs of `points`, best first, leaving out those in `retraced`."""
    sign = 1.0 if mode == "max" else -1.0
    ranked = sorted((p for p in points if math.isfinite(p[1])), key=lambda p: -sign * p[1])
    out: list[dict[str, Any]] = []
    for config, _ in ranked:
        if len(out) < k and config not in out and config not in retraced:
            out.append(config)
    return out


def warm_points(logger: SweepLogger, search: SearchCfg, base: TrainCfg, tags: dict[str, str]) -> WarmStart:
    """The finished trials of earlier sweeps to tell the searcher, and the best of them to run again first
    (not those whose logged train values equal what this sweep, over `base`, would train with)."""
    if search.warm_start == "off":
        return WarmStart(note="warm start off")
    named = search.warm_start != "auto"
    parents = [search.warm_start] if named else matching_sweeps(logger.client, logger.experiment_id, tags,
                                                                    logger.parent_run_id)
    if not parents:
        return WarmStart(note="cold start: no earlier sweep on the same data and split in MLflow")
    space = SearchSpace(search.space)
    points, retraced = [], []
    for raw, value in finished_trials(logger.client, logger.experiment_id, parents, search.metric):
        if (config := parse_logged(raw, space)) is not None:
            points.append((config, value))
            if raw == logged_params(trial_params(base, config)):
                retraced.append(config)
    replays = best_configs(points, search.mode, retraced)
    where = f"run {search.warm_start}" if named else f"{len(parents)} earlier sweep(s) on the same data and split"
    again = f"; the best {len(replays)} run again first" if replays else ""
    return WarmStart(points, replays, f"warm start: {len(points)} finished trials from {where}{again}")
