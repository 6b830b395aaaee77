"""Bench scripts run end to end at toy size (their --smoke-test), so they cannot rot unnoticed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tests.integration._proc import run

pytestmark = [pytest.mark.slow, pytest.mark.ray]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script, result, keys", [
    ("bench.overhead", "overhead-smoke.json", {"ratio_trial_vs_fit", "ratio_sweep_wall_vs_fit", "machine"}),
    ("bench.hpo", "hpo-smoke.json", {"compute_ratio", "auroc_gap", "results", "machine"}),
    ("bench.fuzz", "fuzz-smoke.json", {"files", "crashes", "hangs", "rejected_by_reason", "peak_rss_tree_mb",
                                       "wall_s", "machine"}),
    ("bench.quality", "quality-smoke.json", {"test_auc", "test_auc_ci", "test_acc", "test_acc_ci", "ece_before",
                                             "ece_after", "selection", "operating_points", "machine"}),
    ("bench.small_cohort", "small_cohort-smoke.json", {"arms", "abs_gap_ratio_single_vs_kfold", "machine"}),
])
def test_bench_smoke(tmp_path: Path, script: str, result: str, keys: set[str]) -> None:
    proc = run([sys.executable, "-m", script, "--smoke-test", "--results", str(tmp_path)], ROOT)
    assert any(line in proc.stdout for line in ("x fit", "TPE+ASHA vs random", "crashes / hangs", "test_auc",
                                                 "test within the OOF CI"))
    written = json.loads((tmp_path / result).read_text())
    assert keys <= set(written)
