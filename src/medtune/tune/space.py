"""params.yaml `search.space` -> an Optuna define-by-run space.

Define-by-run (rather than a dict of Ray domains) lets a parameter depend on another: momentum is only
sampled when the optimizer uses it, so TPE does not learn from a value that had no effect.
"""

from __future__ import annotations

from typing import Any

import optuna

from medtune.config import ParamSpec

# Parameters that only matter for some optimizer choices: name -> optimizers that use it.
CONDITIONAL = {"momentum": ("sgd_momentum", "rmsprop")}


def suggest(trial: optuna.Trial, spec: ParamSpec) -> Any:
    """Sample one hyperparameter as its spec says (int range, float range, log or not, or choices)."""
    if spec.choices is not None:
        return trial.suggest_categorical(spec.name, list(spec.choices))
    if spec.is_int:
        return trial.suggest_int(spec.name, int(spec.low), int(spec.high), log=spec.log)
    return trial.suggest_float(spec.name, float(spec.low), float(spec.high), log=spec.log)


class SearchSpace:
    """The callable OptunaSearch asks per trial. A class, not a closure, because Ray pickles the
    searcher (plain pickle) into the experiment checkpoint that Tuner.restore reads back."""

    def __init__(self, specs: tuple[ParamSpec, ...]) -> None:
        self.specs = tuple(sorted(specs, key=lambda s: s.name in CONDITIONAL))  # parents first

    def __call__(self, trial: optuna.Trial) -> None:
        values: dict[str, Any] = {}
        for spec in self.specs:
            users = CONDITIONAL.get(spec.name)
            if users and "optimizer" in values and values["optimizer"] not in users:
                continue
            values[spec.name] = suggest(trial, spec)
        # Returning None: OptunaSearch takes the suggested values from the trial itself.

    def active(self, values: dict[str, Any]) -> list[ParamSpec]:
        """The specs a trial with these values samples (a conditional one only when its parent uses it)."""
        users = {spec.name: CONDITIONAL.get(spec.name) for spec in self.specs}
        return [s for s in self.specs
                if not (users[s.name] and values.get("optimizer") not in users[s.name] and "optimizer" in values)]

    def point(self, values: dict[str, Any]) -> dict[str, Any] | None:
        """`values` (e.g. a logged trial's params) as a point of this space: its active keys only; None when
        one is missing or lies outside its range or choices."""
        if any(spec.name not in values for spec in self.specs):
            return None
        point = {s.name: values[s.name] for s in self.active(values)}
        try:
            self.frozen(point, 0.0)
        except (ValueError, TypeError):
            return None
        return point

    def frozen(self, values: dict[str, Any], value: float) -> optuna.trial.FrozenTrial:
        """A finished trial of this space (warm start); ValueError when a value lies outside it."""
        specs = self.active(values)
        return optuna.trial.create_trial(params={s.name: values[s.name] for s in specs},
                                         distributions={s.name: distribution(s) for s in specs}, value=value)


def distribution(spec: ParamSpec) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution `suggest` samples this spec from."""
    if spec.choices is not None:
        return optuna.distributions.CategoricalDistribution(list(spec.choices))
    if spec.is_int:
        return optuna.distributions.IntDistribution(int(spec.low), int(spec.high), log=spec.log)
    return optuna.distributions.FloatDistribution(float(spec.low), float(spec.high), log=spec.log)


def sample_configs(space: tuple[ParamSpec, ...], seed: int, n: int) -> list[dict[str, Any]]:
    """Draw n configs with Optuna's RandomSampler outside Ray (previews, docs, tests of the space)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    sample = SearchSpace(space)
    configs = []
    for _ in range(n):
        trial = study.ask()
        sample(trial)
        configs.append(dict(trial.params))
        study.tell(trial, 0.0)
    return configs
