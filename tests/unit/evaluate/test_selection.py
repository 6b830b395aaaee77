"""What promote chooses on validation: calibration first, then the threshold rule on calibrated outputs."""

from __future__ import annotations

import numpy as np
import pytest

from medtune.config import RegistryCfg
from medtune.evaluate.selection import choose_on_validation
from medtune.evaluate.thresholds import choose_threshold
from medtune.models.inference import calibrate
from medtune.task import Task

BINARY = Task("binary", ("normal", "abnormal"))


def sharp(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, n)
    return (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int), 1 / (1 + np.exp(-4 * z - 1))


@pytest.mark.parametrize("rule", ["youden", "sensitivity:0.95", "0.5"])
def test_threshold_is_chosen_on_the_calibrated_validation_outputs(rule: str) -> None:
    y, raw = sharp(800, 0)
    chosen = choose_on_validation(BINARY, y, raw, RegistryCfg(threshold=rule), tta=False)
    calibrated = calibrate(raw, "binary", chosen.calibration)
    assert chosen.threshold == pytest.approx(choose_threshold(y, calibrated, rule))
    assert chosen.metrics["ece"] < chosen.metrics["ece_raw"] and chosen.metrics["brier"] < chosen.metrics["brier_raw"]
    assert chosen.inference == {"threshold": chosen.threshold, "calibration": chosen.calibration, "tta": False}
    if rule == "sensitivity:0.95":
        assert chosen.metrics["sensitivity"] >= 0.95


def test_no_calibration_and_no_threshold_where_the_task_has_none() -> None:
    y, raw = sharp(200, 1)
    assert choose_on_validation(BINARY, y, raw, RegistryCfg(calibration="none"), tta=False).calibration is None
    values = np.random.default_rng(2).normal(size=50)
    chosen = choose_on_validation(Task("regression", ("radius",)), values, values + 0.1, RegistryCfg(), tta=True)
    assert chosen.threshold is None and chosen.calibration is None and chosen.metrics["mae"] == pytest.approx(0.1)
