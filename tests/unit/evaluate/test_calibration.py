"""Calibration fitted on validation: it must repair over- and under-confident probabilities, keep the
ranking (AUROC) of binary outputs, and store numbers `calibrate` applies the same way everywhere."""

from __future__ import annotations

import numpy as np
import pytest

from medtune.evaluate.calibration import calibration_metrics, fit_calibration
from medtune.evaluate.metrics import auroc
from medtune.models.inference import calibrate


def overconfident(n: int, seed: int, sharpen: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from a true probability, and that probability's logit multiplied by `sharpen`."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(int)
    return y, 1 / (1 + np.exp(-sharpen * z))


@pytest.mark.parametrize("method", ["temperature", "platt"])
def test_binary_calibration_repairs_overconfidence_on_fresh_data(method: str) -> None:
    y_val, p_val = overconfident(2000, 0)
    y_test, p_test = overconfident(2000, 1)
    fitted = fit_calibration("binary", y_val, p_val, method)
    assert fitted["scale"][0] == pytest.approx(0.25, rel=0.2)  # undoes the x4 sharpening
    after = calibrate(p_test, "binary", fitted)
    before_m, after_m = calibration_metrics("binary", y_test, p_test), calibration_metrics("binary", y_test, after)
    assert after_m["ece"] < before_m["ece"] / 3 and after_m["brier"] < before_m["brier"]
    assert auroc(y_test, after) == pytest.approx(auroc(y_test, p_test), abs=1e-4)  # ties only where p saturates


def test_none_regression_and_identity_leave_outputs_alone() -> None:
    y, p = overconfident(100, 2)
    assert fit_calibration("binary", y, p, "none") is None
    assert fit_calibration("regression", y, p, "temperature") is None
    np.testing.assert_allclose(calibrate(p, "binary", {"scale": [1.0], "bias": [0.0]}), p, atol=1e-6)
    assert calibrate(p, "binary", None) is p


def test_multiclass_temperature_keeps_argmax_and_softens() -> None:
    rng = np.random.default_rng(4)
    logits = rng.normal(0, 1, (1500, 3))
    y = np.array([rng.choice(3, p=np.exp(r) / np.exp(r).sum()) for r in logits])
    sharp = np.exp(5 * logits) / np.exp(5 * logits).sum(axis=1, keepdims=True)
    fitted = fit_calibration("multiclass", y, sharp, "platt")  # multiclass: temperature whatever is asked
    assert fitted["method"] == "temperature" and fitted["scale"][0] == pytest.approx(0.2, rel=0.25)
    after = calibrate(sharp, "multiclass", fitted)
    assert (after.argmax(1) == sharp.argmax(1)).all() and np.allclose(after.sum(1), 1, atol=1e-5)
    assert calibration_metrics("multiclass", y, after)["ece"] < calibration_metrics("multiclass", y, sharp)["ece"]


def test_multilabel_fits_one_scale_per_label_and_skips_unread_cells() -> None:
    y0, p0 = overconfident(1000, 5, sharpen=4.0)
    y1, p1 = overconfident(1000, 6, sharpen=1.0)
    y = np.stack([y0, y1], axis=1).astype(float)
    y[:100, 1] = np.nan
    fitted = fit_calibration("multilabel", y, np.stack([p0, p1], axis=1), "temperature")
    assert fitted["scale"][0] == pytest.approx(0.25, rel=0.2) and fitted["scale"][1] == pytest.approx(1.0, rel=0.2)
    assert set(calibration_metrics("multilabel", y, np.stack([p0, p1], axis=1))) == {"ece", "brier"}
