"""Bench scripts run end to end at toy size (their --smoke-test), so they cannot rot unnoticed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from tests.integration._proc import run

pytestmark = [pytest.mark.slow, pytest.mark.ray]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script, result, keys, table", [
    ("bench.overhead", "overhead-smoke.json", {"ratio_trial_vs_fit", "ratio_sweep_wall_vs_fit", "machine"}, "x fit"),
    ("bench.hpo", "hpo-smoke.json", {"compute_ratio", "n_seeds", "compute_ratio_spread", "warm_compute_ratio",
                                     "machine"}, "TPE+ASHA vs random"),
    ("bench.fuzz", "fuzz-smoke.json", {"files", "crashes", "hangs", "rejected_by_reason", "peak_rss_tree_mb",
                                       "wall_s", "machine"}, "crashes / hangs"),
    ("bench.quality", "quality-smoke.json", {"test_auc", "test_auc_ci", "test_acc", "test_acc_ci", "ece_before",
                                             "ece_after", "selection", "operating_points", "top_k", "cv", "machine"},
     "top-k ensemble"),
    ("bench.small_cohort", "small_cohort-smoke.json", {"arms", "abs_gap_ratio_single_vs_kfold", "machine"},
     "test within the OOF CI"),
    ("bench.throughput", "throughput-smoke.json", {"ratio_vs_bare", "loader_vs_step", "results", "machine"},
     "loader/step"),
    ("bench.presets", "presets-smoke.json", {"presets", "n_train", "machine"}, "best val AUROC"),
    ("bench.memory", "memory-smoke.json", {"rss_ratio", "images_npy_dtype", "results", "machine"}, "rss_ratio"),
    ("bench.startup", "startup-smoke.json", {"commands", "repeats", "machine"}, "with medtune's exit"),
])
def test_bench_smoke(tmp_path: Path, script: str, result: str, keys: set[str], table: str) -> None:
    proc = run([sys.executable, "-m", script, "--smoke-test", "--results", str(tmp_path)], ROOT)
    assert table in proc.stdout
    written = json.loads((tmp_path / result).read_text())
    assert keys <= set(written)
    if script == "bench.throughput":
        assert all(r["medtune_images_s"] > 0 and r["bare_images_s"] > 0 for r in written["results"])
    if script == "bench.presets":
        assert [r["preset"] for r in written["presets"]] == ["fast"] and written["presets"][0]["trials"] == 2
    if script == "bench.startup":  # both arms ran the stage's command to its one-line error
        assert all(written["commands"]["test"][f"{arm}_median_s"] > 0 for arm in ("medtune_exit", "normal_exit"))
    if script == "bench.memory":
        assert written["images_npy_dtype"] == "uint8" and written["results"][0]["child"]["status"] == "completed"


def test_gpu_bench_without_cuda_stops_at_once_in_one_line(tmp_path: Path) -> None:
    """bench/gpu.py on a machine (or a view of one) without CUDA: exit 2, one line, no result written."""
    proc = run([sys.executable, "-m", "bench.gpu", "--results", str(tmp_path)], ROOT, check=False,
               env={"CUDA_VISIBLE_DEVICES": ""}, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == ["bench.gpu: no CUDA device (torch.cuda.is_available() is False); "
                                                "run it on a machine with a GPU"]
    assert not list(tmp_path.iterdir())
