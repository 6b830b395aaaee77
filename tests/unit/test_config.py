"""params.yaml loading: the real file parses, and every bad value fails with one line naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtune.config import ParamSpec, load_params, require_path
from medtune.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_real_params_yaml_loads_with_all_seven_searched_hyperparameters() -> None:
    params = load_params(ROOT / "params.yaml")
    names = {spec.name for spec in params.search.space}
    assert {"lr", "batch_size", "epochs", "dropout", "depth", "activation", "optimizer"} <= names
    assert params.train.seed == params.base.seed


@pytest.mark.parametrize("override, expected", [
    ({"train.optimizer": "adamm"},
     "params.yaml: train.optimizer: 'adamm' is not one of sgd, sgd_momentum, rmsprop, adagrad, adam, adamw"),
    ({"train.lr": -0.1}, "params.yaml: train.lr: -0.1 must be > 0"),
    ({"train.activation": "swish"}, "params.yaml: train.activation: 'swish' is not one of"),
    ({"train.batch_size": "big"}, "params.yaml: train.batch_size: expected int, got 'big'"),
    ({"train.nope": 1}, "params.yaml: train.nope: unknown key"),
    ({"split.val_fraction": 1.5}, "params.yaml: split.val_fraction: 1.5 must be in (0, 1)"),
    ({"split.val_fraction": 0.6, "split.test_fraction": 0.5}, "params.yaml: split: "),
    ({"split.method": "random"}, "params.yaml: split.method: 'random' is not one of auto, grouped"),
    ({"search.space": {"lr": {"low": 0.1, "high": 0.01}}}, "params.yaml: search.space.lr: low (0.1) must be below"),
    ({"search.space": {"lr": {"low": 0.0, "high": 0.01, "log": True}}}, "a log range needs low > 0"),
    ({"search.space": {"optimizer": {"choices": ["adam", "lion"]}}}, "search.space.optimizer: 'lion' is not one of"),
    ({"search.space": {"colour": {"choices": [1]}}}, "search.space.colour: not a train parameter"),
    ({"search.space": {"depth": {"low": 1.5, "high": 3}}}, "search.space.depth: integer parameter"),
    ({"search.space": {"depth": {"low": 2, "high": 9}}}, "search.space.depth: 9 must be in 1..6"),
    ({"test.gradcam_cases": 0}, "params.yaml: test.gradcam_cases: 0 must be in 1..16 (reports/test/gradcam.png"),
    ({"ingest.file_timeout_s": -1}, "params.yaml: ingest.file_timeout_s: -1.0 must be >= 0 (0: no timeout)"),
    ({"ingest.max_pixels": 0}, "params.yaml: ingest.max_pixels: 0 must be >= 1"),
    ({"ingest.max_frames": 0}, "params.yaml: ingest.max_frames: 0 must be >= 1"),
    ({"ingest.max_file_mb": 0}, "params.yaml: ingest.max_file_mb: 0.0 must be > 0"),
    ({"ingest.worker_memory_mb": 100}, "params.yaml: ingest.worker_memory_mb: 100.0 must be >= 1024"),
    ({"ingest.decoder_plugins": ["not a module"]}, "params.yaml: ingest.decoder_plugins: ('not a module',) must be"),
    ({"ingest.hash_paths": "yes"}, "params.yaml: ingest.hash_paths: expected true/false, got 'yes'"),
    ({"registry.threshold": "sensitivity:95"}, "params.yaml: registry.threshold: 'sensitivity:95' is not one of "
                                               "youden, f1, sensitivity:<x in (0, 1]>, specificity:<x in (0, 1]>"),
    ({"registry.threshold": 2}, "params.yaml: registry.threshold: '2' is not one of youden"),
    ({"registry.calibration": "isotonic"}, "params.yaml: registry.calibration: 'isotonic' is not one of temperature"),
    ({"registry.tta": "yes"}, "params.yaml: registry.tta: expected true/false"),
    ({"split.folds": 1}, "params.yaml: split.folds: 1 must be 0 (no cross-validation), a number of folds in 2..20"),
    ({"split.folds": "many"}, "params.yaml: split.folds: expected int, got 'many'"),
])
def test_bad_values_give_one_line_naming_the_key(override: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_params(ROOT / "params.yaml", overrides=override)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message


def test_missing_raw_dir_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"params.yaml: ingest.raw_dir: directory '.*nowhere' does not exist"):
        require_path(str(tmp_path / "nowhere"), "ingest.raw_dir", is_dir=True)


def test_broken_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "params.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(bad)
    with pytest.raises(ConfigError, match="file not found"):
        load_params(tmp_path / "absent.yaml")


def test_space_spec_types() -> None:
    params = load_params(ROOT / "params.yaml", overrides={"search.space": {
        "depth": {"low": 2, "high": 4}, "lr": {"low": 1e-4, "high": 1e-2, "log": True},
        "activation": {"choices": ["relu", "gelu"]}}})
    specs = {s.name: s for s in params.search.space}
    assert specs["depth"].is_int and not specs["lr"].is_int and specs["lr"].log
    assert specs["activation"] == ParamSpec("activation", choices=("relu", "gelu"))


def test_tracking_uri_env_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert load_params(ROOT / "params.yaml").tracking_uri == "http://127.0.0.1:5999"


def test_choice_values_have_the_train_type() -> None:
    with pytest.raises(ConfigError, match=r"search.space.residual: expected true/false, got 'yes'"):
        load_params(ROOT / "params.yaml", overrides={"search.space": {"residual": {"choices": [False, "yes"]}}})
    with pytest.raises(ConfigError, match=r"search.space.batch_size: expected int, got 3.5"):
        load_params(ROOT / "params.yaml", overrides={"search.space": {"batch_size": {"choices": [16, 3.5]}}})


@pytest.mark.parametrize("value", ["youden", "f1", "sensitivity:0.95", "specificity:0.90", 0.5, 0, "0.3"])
def test_threshold_rules_load(value: object) -> None:
    assert load_params(ROOT / "params.yaml", overrides={"registry.threshold": value}).registry.threshold == str(value)
