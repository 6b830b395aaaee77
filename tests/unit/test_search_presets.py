"""search.preset fills only what params.yaml leaves out; the plan keys take auto or an integer."""

from __future__ import annotations

import pytest

from medtune.config.load import parse_params
from medtune.config.presets import PRESETS
from medtune.errors import ConfigError


def names(params) -> set[str]:
    return {spec.name for spec in params.search.space}


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_a_preset_alone_gives_its_trials_and_space(preset: str) -> None:
    params = parse_params({"search": {"preset": preset}})
    assert params.search.num_samples == PRESETS[preset]["num_samples"]
    assert names(params) == set(PRESETS[preset]["space"])
    epochs = next(s for s in params.search.space if s.name == "epochs")
    assert (epochs.low, epochs.high) == (PRESETS[preset]["space"]["epochs"]["low"],
                                         PRESETS[preset]["space"]["epochs"]["high"])


def test_explicit_values_win_over_the_preset() -> None:
    params = parse_params({"search": {"preset": "thorough", "num_samples": 5,
                                      "space": {"epochs": {"low": 1, "high": 2}, "lr": {"low": 0.01, "high": 0.1}}}})
    assert params.search.num_samples == 5
    epochs = next(s for s in params.search.space if s.name == "epochs")
    assert (epochs.low, epochs.high) == (1, 2)
    assert "augment" in names(params)  # a key the file leaves out still comes from the preset


def test_thorough_searches_monai_backbones_only_when_the_images_fit_them() -> None:
    assert "arch" not in names(parse_params({"search": {"preset": "thorough"}}))  # 28 px default
    wide = parse_params({"search": {"preset": "thorough"}, "preprocess": {"image_size": 64}})
    arch = next(s for s in wide.search.space if s.name == "arch")
    assert arch.choices[0] == "convnet" and len(arch.choices) > 1


def test_none_means_the_files_ranges() -> None:
    assert parse_params({"search": {"preset": "none", "num_samples": 3}}).search.preset is None


@pytest.mark.parametrize("search, expected", [
    ({"preset": "quick"}, "search.preset: 'quick' is not one of fast, balanced, thorough or null"),
    ({"grace_period": 0}, "search.grace_period: 0 must be auto or >= 1"),
    ({"min_steps": -1}, "search.min_steps: -1 must be auto or >= 0"),
    ({"batch_cap": "big"}, "search.batch_cap: 'big' must be auto or >= 0"),
    ({"n_startup_trials": -2}, "search.n_startup_trials: -2 must be auto or >= 0"),
    ({"warm_start": ""}, "search.warm_start: '' must be auto, off or the MLflow run id"),
])
def test_bad_search_values_name_the_key(search: dict, expected: str) -> None:
    with pytest.raises(ConfigError, match=None) as err:
        parse_params({"search": search})
    assert expected in str(err.value)
