"""The patient bootstrap: seeded, resamples patients not images, CIs for every number a metric returns."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medtune.evaluate.bootstrap import patient_bootstrap
from medtune.evaluate.metrics import auroc, binary_metrics


def auroc_ci(y: np.ndarray, p: np.ndarray, groups: np.ndarray, n_boot: int, seed: int) -> tuple[float, float]:
    cis = patient_bootstrap(lambda idx: {"auroc": auroc(y[idx], p[idx])}, groups, n_boot, seed)
    return cis.get("auroc", (math.nan, math.nan))


def whale_cohort() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40 one-image patients ranked fairly well, plus one patient with 50 badly ranked positive images."""
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(20), np.zeros(20), np.ones(50)].astype(int)
    p = np.r_[rng.uniform(0.4, 1.0, 20), rng.uniform(0.0, 0.6, 20), np.full(50, 0.1)]
    groups = np.r_[np.arange(40), np.full(50, 99)]
    return y, p, groups


def test_bootstrap_is_seeded_and_brackets_the_auroc() -> None:
    y, p, groups = whale_cohort()
    ci = auroc_ci(y, p, groups, n_boot=300, seed=5)
    assert ci == auroc_ci(y, p, groups, n_boot=300, seed=5)
    assert ci != auroc_ci(y, p, groups, n_boot=300, seed=6)
    assert ci[0] < binary_metrics(y, p, 0.5)["auroc"] < ci[1]
    assert all(math.isnan(v) for v in auroc_ci(y, p, groups, n_boot=0, seed=5))
    assert all(math.isnan(v) for v in auroc_ci(np.ones(6), p[:6], np.arange(6), 50, seed=0))


def test_bootstrap_resamples_patients_not_images() -> None:
    y, p, groups = whale_cohort()
    by_patient = auroc_ci(y, p, groups, n_boot=400, seed=0)
    by_image = auroc_ci(y, p, np.arange(len(y)), n_boot=400, seed=0)
    # the 50-image patient is drawn whole or not at all, so the AUROC swings far more
    assert by_patient[1] - by_patient[0] > 2 * (by_image[1] - by_image[0])


def test_bootstrap_ignores_copies_inside_a_patient() -> None:
    # Tripling every image inside its own patient leaves each patient resample's AUROC unchanged,
    # so a patient bootstrap gives the identical CI; an image bootstrap would not.
    y, p, groups = whale_cohort()
    y3, p3, g3 = np.repeat(y, 3), np.repeat(p, 3), np.repeat(groups, 3)
    assert auroc_ci(y3, p3, g3, 200, seed=2) == pytest.approx(
        auroc_ci(y, p, groups, 200, seed=2)
    )
    one_per_image = auroc_ci(y, p, np.arange(len(y)), 200, seed=2)
    assert auroc_ci(y3, p3, np.arange(len(y3)), 200, seed=2) != pytest.approx(one_per_image)


def test_every_number_of_a_metric_dict_gets_an_interval() -> None:
    y, p, groups = whale_cohort()
    cis = patient_bootstrap(lambda idx: binary_metrics(y[idx], p[idx], 0.5), groups, 100, seed=0)
    assert {"auroc", "accuracy", "sensitivity", "specificity", "f1", "balanced_accuracy"} <= set(cis)
    assert all(low <= high for low, high in cis.values())
