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
    ("bench.hpo", "hpo-smoke.json", {"compute_ratio", "n_seeds", "compute_ratio_spread", "warm_compute_ratio",
                                     "machine"}),
    ("bench.fuzz", "fuzz-smoke.json", {"files", "crashes", "hangs", "rejected_by_reason", "peak_rss_tree_mb",
                                       "wall_s", "machine"}),
])
def test_bench_smoke(tmp_path: Path, script: str, result: str, keys: set[str]) -> None:
    proc = run([sys.executable, "-m", script, "--smoke-test", "--results", str(tmp_path)], ROOT)
    assert "x fit" in proc.stdout or "TPE+ASHA vs random" in proc.stdout or "crashes / hangs" in proc.stdout
    written = json.loads((tmp_path / result).read_text())
    assert keys <= set(written)
