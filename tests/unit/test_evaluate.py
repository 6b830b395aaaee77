"""Unit tests for metrics, the patient bootstrap, the test-once ledger and report plots."""

from __future__ import annotations

import getpass
import math
import re

import numpy as np
import pandas as pd
import pytest

from medtune.errors import DataError, TestSetLockedError
from medtune.evaluate import (
    TestLedger,
    binary_metrics,
    bootstrap_auroc_ci,
    choose_threshold,
    multiclass_metrics,
    write_plots,
)

# 4 positives, 6 negatives; at threshold 0.5: tp=3 fn=1 fp=1 tn=5
Y_HAND = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
P_HAND = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4, 0.45, 0.05])


def youden(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    pred = p >= threshold
    return pred[y == 1].mean() - pred[y == 0].mean()


def whale_cohort() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """40 one-image patients ranked fairly well, plus one patient with 50 badly ranked positive images."""
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(20), np.zeros(20), np.ones(50)].astype(int)
    p = np.r_[rng.uniform(0.4, 1.0, 20), rng.uniform(0.0, 0.6, 20), np.full(50, 0.1)]
    groups = np.r_[np.arange(40), np.full(50, 99)]
    return y, p, groups


def test_threshold_is_youden_on_known_example() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.65, 0.5, 0.7, 0.8, 0.9, 0.95])
    # J at 0.5 = 1 - 1/4 = 0.75; J at 0.7 = 4/5 - 0 = 0.8 (the best)
    assert choose_threshold(y, p) == pytest.approx(0.7)


def test_threshold_maximises_j_over_every_cut() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    p = np.clip(0.3 * y + rng.normal(0.35, 0.2, 200), 0, 1)
    best = max(youden(y, p, t) for t in np.unique(p))
    assert youden(y, p, choose_threshold(y, p)) == pytest.approx(best)
    with pytest.raises(DataError, match="only one class"):
        choose_threshold(np.ones(5), np.linspace(0, 1, 5))


def test_binary_metrics_match_hand_computed_confusion() -> None:
    m = binary_metrics(Y_HAND, P_HAND, 0.5)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(5 / 6)
    assert m["accuracy"] == pytest.approx(8 / 10)
    assert m["balanced_accuracy"] == pytest.approx((3 / 4 + 5 / 6) / 2)
    assert m["f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert m["auroc"] == pytest.approx(20 / 24)  # 20 of 24 positive-negative pairs ranked right
    assert (m["n"], m["n_pos"]) == (10, 4)
    # a probability equal to the threshold counts as positive: 0.7 and above -> tp=2, fp=1
    at = binary_metrics(Y_HAND, P_HAND, 0.7)
    assert (at["sensitivity"], at["specificity"]) == (pytest.approx(2 / 4), pytest.approx(5 / 6))


def test_multiclass_metrics_hand_example() -> None:
    y = np.array([0, 0, 1, 1, 2, 2])
    prob = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.7, 0.2, 0.1],
            [0.2, 0.7, 0.1],
            [0.1, 0.4, 0.5],  # class 1 called 2, yet every one-vs-rest ranking stays perfect
            [0.1, 0.1, 0.8],
            [0.0, 0.1, 0.9],
        ]
    )
    m = multiclass_metrics(y, prob)
    assert m["auroc"] == pytest.approx(1.0)
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["per_class_recall"] == {"0": 1.0, "1": 0.5, "2": 1.0}
    assert m["per_class_auroc"] == {"0": 1.0, "1": 1.0, "2": 1.0}
    assert m["per_class_f1"] == pytest.approx({"0": 1.0, "1": 2 / 3, "2": 0.8})
    assert m["f1_macro"] == pytest.approx((1 + 2 / 3 + 0.8) / 3)
    assert m["balanced_accuracy"] == pytest.approx(2.5 / 3)


def test_bootstrap_is_seeded_and_brackets_the_auroc() -> None:
    y, p, groups = whale_cohort()
    ci = bootstrap_auroc_ci(y, p, groups, n_boot=300, seed=5)
    assert ci == bootstrap_auroc_ci(y, p, groups, n_boot=300, seed=5)
    assert ci != bootstrap_auroc_ci(y, p, groups, n_boot=300, seed=6)
    assert ci[0] < binary_metrics(y, p, 0.5)["auroc"] < ci[1]
    assert all(math.isnan(v) for v in bootstrap_auroc_ci(y, p, groups, n_boot=0, seed=5))
    assert all(math.isnan(v) for v in bootstrap_auroc_ci(np.ones(6), p[:6], np.arange(6), 50, seed=0))


def test_bootstrap_resamples_patients_not_images() -> None:
    y, p, groups = whale_cohort()
    by_patient = bootstrap_auroc_ci(y, p, groups, n_boot=400, seed=0)
    by_image = bootstrap_auroc_ci(y, p, np.arange(len(y)), n_boot=400, seed=0)
    # the 50-image patient is drawn whole or not at all, so the AUROC swings far more
    assert by_patient[1] - by_patient[0] > 2 * (by_image[1] - by_image[0])


def test_bootstrap_ignores_copies_inside_a_patient() -> None:
    # Tripling every image inside its own patient leaves each patient resample's AUROC unchanged,
    # so a patient bootstrap gives the identical CI; an image bootstrap would not.
    y, p, groups = whale_cohort()
    y3, p3, g3 = np.repeat(y, 3), np.repeat(p, 3), np.repeat(groups, 3)
    assert bootstrap_auroc_ci(y3, p3, g3, 200, seed=2) == pytest.approx(
        bootstrap_auroc_ci(y, p, groups, 200, seed=2)
    )
    one_per_image = bootstrap_auroc_ci(y, p, np.arange(len(y)), 200, seed=2)
    assert bootstrap_auroc_ci(y3, p3, np.arange(len(y3)), 200, seed=2) != pytest.approx(one_per_image)


def test_ledger_refuses_second_scoring_and_names_the_time(tmp_path) -> None:
    ledger = TestLedger(tmp_path / "reports" / "test_ledger.json")
    ledger.check("cxr", 3, "abc123")
    first = ledger.record("cxr", 3, "abc123", {"auroc": np.float64(0.91)})
    reopened = TestLedger(tmp_path / "reports" / "test_ledger.json")  # state lives in the file
    expected = f"abc123 was already scored for cxr v3 at {first['scored_at']} by {getpass.getuser()}"
    with pytest.raises(TestSetLockedError, match=re.escape(expected)):
        reopened.check("cxr", "3", "abc123")
    with pytest.raises(TestSetLockedError, match="--rescore --reason"):
        reopened.record("cxr", 3, "abc123", {"auroc": 0.5})
    reopened.check("cxr", 4, "abc123")  # another version or split is a fresh scoring
    reopened.check("cxr", 3, "def456")
    assert reopened.entries() == [first] and first["metrics"] == {"auroc": 0.91}


def test_ledger_rescore_needs_reason_and_keeps_history(tmp_path) -> None:
    ledger = TestLedger(tmp_path / "ledger.json")
    first = ledger.record("cxr", 1, "abc", {"auroc": 0.9})
    for empty in ("", "   "):
        with pytest.raises(TestSetLockedError, match="non-empty --reason"):
            ledger.record("cxr", 1, "abc", {"auroc": 0.8}, rescore_reason=empty)
    second = ledger.record("cxr", 1, "abc", {"auroc": 0.8}, rescore_reason="labels corrected in 12 cases")
    assert ledger.entries() == [first, second]
    assert (first["rescore_reason"], second["rescore_reason"]) == (None, "labels corrected in 12 cases")
    with pytest.raises(TestSetLockedError):
        ledger.check("cxr", 1, "abc")


def test_ledger_unreadable_file_is_a_data_error(tmp_path) -> None:
    path = tmp_path / "ledger.json"
    path.write_text("{not json")
    with pytest.raises(DataError, match="test ledger is unreadable"):
        TestLedger(path).entries()


def test_write_plots_files_and_columns(tmp_path) -> None:
    paths = write_plots(Y_HAND, P_HAND, 0.5, tmp_path / "plots")
    assert set(paths) == {
        "roc.csv",
        "confusion.csv",
        "calibration.csv",
        "roc.png",
        "confusion.png",
        "calibration.png",
    }
    for name, path in paths.items():
        assert path.exists() and path.parent == tmp_path / "plots"
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    roc = pd.read_csv(paths["roc.csv"])
    assert list(roc.columns) == ["fpr", "tpr"]
    assert roc.iloc[0].tolist() == [0.0, 0.0] and roc.iloc[-1].tolist() == [1.0, 1.0]
    confusion = pd.read_csv(paths["confusion.csv"])
    assert list(confusion.columns) == ["actual", "predicted"] and len(confusion) == 10
    assert pd.crosstab(confusion["actual"], confusion["predicted"]).to_numpy().tolist() == [[5, 1], [1, 3]]
    calibration = pd.read_csv(paths["calibration.csv"])
    assert list(calibration.columns) == ["bin", "mean_predicted", "fraction_positive"]
    # bin 9 holds only 0.9 (positive); bin 4 holds 0.4 and 0.45 (both negative)
    rows = calibration.set_index("bin")
    assert rows.loc[9].tolist() == [pytest.approx(0.9), 1.0]
    assert rows.loc[4].tolist() == [pytest.approx(0.425), 0.0]
    assert 5 not in rows.index  # empty bins are left out


def test_bootstrap_auroc_matches_sklearn_with_ties() -> None:
    from sklearn.metrics import roc_auc_score

    from medtune.evaluate import _fast_auroc

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.round(rng.uniform(size=300) + 0.2 * y, 1)  # coarse values: many ties
    assert _fast_auroc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
