"""Test-report pieces: scoring at the stored (validation) threshold, per-site breakdown, Grad-CAM."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from medtune.evaluate import binary_metrics, choose_threshold
from medtune.gradcam import gradcam, pick_cases, write_gradcam_grid
from medtune.models.nets import NetSpec, build_net
from medtune.report import breakdown, score_test, write_breakdown


def test_score_test_uses_the_stored_threshold_not_one_fitted_on_test() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    prob = np.clip(0.5 * y + rng.normal(0.25, 0.2, 300), 0, 1)
    probs = np.c_[1 - prob, prob]
    stored = 0.8  # what promote chose on validation
    fitted_on_test = choose_threshold(y, prob)
    assert abs(fitted_on_test - stored) > 0.1
    metrics = score_test(y, probs, [str(i) for i in range(300)], {"threshold": stored}, n_boot=50, seed=0)
    assert metrics["threshold"] == stored
    at_stored, at_test = binary_metrics(y, prob, stored), binary_metrics(y, prob, fitted_on_test)
    for key in ("sensitivity", "specificity", "accuracy", "f1"):
        assert metrics[key] == pytest.approx(at_stored[key])
    assert metrics["balanced_accuracy"] < at_test["balanced_accuracy"]  # Youden on test would flatter it
    assert metrics["auroc_ci_low"] < metrics["auroc"] < metrics["auroc_ci_high"]


def test_breakdown_by_manufacturer_and_modality(tmp_path) -> None:
    rows = pd.DataFrame({"manufacturer": ["A", "A", "A", "A", "B", "B", None],
                         "modality": ["CR", "CR", "DX", "DX", "DX", "DX", "CR"]})
    y = np.array([1, 0, 1, 0, 1, 1, 0])
    prob = np.array([0.9, 0.2, 0.4, 0.6, 0.7, 0.3, 0.1])
    table = breakdown(rows, y, np.c_[1 - prob, prob], threshold=0.5)
    a = table[(table["column"] == "manufacturer") & (table["group"] == "A")].iloc[0]
    assert (a["n"], a["n_pos"], a["auroc"], a["accuracy"]) == (4, 2, 0.75, 0.5)
    b = table[(table["column"] == "manufacturer") & (table["group"] == "B")].iloc[0]
    assert math.isnan(b["auroc"]) and b["accuracy"] == 0.5  # one class only: AUROC undefined
    assert set(table.loc[table["column"] == "manufacturer", "group"]) == {"A", "B", "unknown"}
    assert table.loc[table["column"] == "modality", "n"].sum() == 7
    files = write_breakdown(table, tmp_path)
    nested = json.loads(files["breakdown.json"].read_text())
    assert nested["manufacturer"]["B"]["auroc"] is None and nested["modality"]["CR"]["n"] == 3
    assert len(pd.read_csv(files["breakdown.csv"])) == len(table)


def corner_cohort(n: int = 128, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 1 has a bright 4x4 patch in the top-left corner; both classes carry the same noise."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 0.3, (n, 1, size, size)).astype(np.float32)
    y = np.arange(n) % 2
    x[y == 1, 0, 1:5, 1:5] += 0.7
    return x, y


def test_gradcam_points_at_the_evidence() -> None:
    torch.manual_seed(0)
    net = build_net(NetSpec(depth=2, width=8, dropout=0.0))
    x, y = corner_cohort(n=64)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.02)
    for _ in range(25):
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(torch.from_numpy(x))[:, 0],
                                                                    torch.from_numpy(y).float())
        loss.backward()
        optimiser.step()
    net.eval()
    positives = x[y == 1][:8]
    cams = gradcam(net, positives, np.ones(len(positives), dtype=int))
    assert cams.shape == (8, 16, 16) and cams.min() >= 0 and cams.max() <= 1
    corner, elsewhere = cams[:, :8, :8].mean(), cams[:, 8:, 8:].mean()
    assert corner > 2 * elsewhere, (corner, elsewhere)
    net.train()
    gradcam(net, positives[:1], np.ones(1, dtype=int))
    assert net.training  # the caller's mode is restored


def test_pick_cases_and_grid_png(tmp_path) -> None:
    y = np.array([1, 1, 0, 0, 1, 0])
    pred = np.array([1, 0, 0, 1, 1, 0])
    confidence = np.array([0.9, 0.8, 0.1, 0.4, 0.2, 0.7])
    right, wrong = pick_cases(y, pred, confidence, k=2)
    assert right.tolist() == [0, 5] and wrong.tolist() == [1, 3]  # most confident first
    net = build_net(NetSpec(depth=2, width=4))
    x, y = corner_cohort(n=10)
    prob = np.linspace(0.05, 0.95, 10)
    path = write_gradcam_grid(net, x, y, prob, 0.5, ["normal", "abnormal"], 3, tmp_path / "gradcam.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert write_gradcam_grid(net, x, y, prob, 0.5, ["normal", "abnormal"], 0, tmp_path / "none.png") is None
