"""The search space: conditional momentum, integer/log ranges, and pickling for Tuner.restore."""

from __future__ import annotations

import pickle

from medtune.config import ParamSpec
from medtune.tune.space import SearchSpace, sample_configs

SPACE = (
    ParamSpec("momentum", low=0.5, high=0.99),
    ParamSpec("optimizer", choices=("adam", "sgd_momentum")),
    ParamSpec("depth", low=2, high=4),
    ParamSpec("lr", low=1e-4, high=1e-1, log=True),
)


def test_momentum_only_sampled_for_optimizers_that_use_it() -> None:
    configs = sample_configs(SPACE, seed=0, n=40)
    assert {c["optimizer"] for c in configs} == {"adam", "sgd_momentum"}
    for config in configs:
        assert ("momentum" in config) == (config["optimizer"] == "sgd_momentum")


def test_ranges_and_types_respected() -> None:
    for config in sample_configs(SPACE, seed=1, n=40):
        assert isinstance(config["depth"], int) and 2 <= config["depth"] <= 4
        assert 1e-4 <= config["lr"] <= 1e-1


def test_same_seed_same_configs_and_space_pickles() -> None:
    assert sample_configs(SPACE, seed=5, n=5) == sample_configs(SPACE, seed=5, n=5)
    restored = pickle.loads(pickle.dumps(SearchSpace(SPACE)))
    assert restored.specs == SearchSpace(SPACE).specs


def test_values_as_a_point_of_the_space() -> None:
    space = SearchSpace(SPACE)
    values = {"momentum": 0.9, "optimizer": "adam", "depth": 3, "lr": 1e-3, "dropout": 0.1}
    assert space.point(values) == {"optimizer": "adam", "depth": 3, "lr": 1e-3}  # adam has no momentum
    assert space.point(values | {"optimizer": "sgd_momentum"})["momentum"] == 0.9
    assert space.point(values | {"lr": 0.5}) is None                # outside the range
    assert space.point(values | {"optimizer": "lion"}) is None      # not one of the choices
    assert space.point({"lr": 1e-3, "depth": 3}) is None            # not every searched key
