"""What every bench script writes alongside its numbers: the machine it ran on, one JSON per result."""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def machine(**extra: Any) -> dict[str, Any]:
    """Where a number was measured: ratios travel between machines, absolute seconds do not."""
    import ray
    import torch

    from medtune.tracking.lineage import git_commit

    return {"git_commit": git_commit(Path(__file__).resolve().parents[1]), "platform": platform.platform(),
            "cpu_model": cpu_model(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2), "load_avg_5m": round(os.getloadavg()[1], 2),
            "torch": torch.__version__, "ray": ray.__version__, **extra}


def cpu_model() -> str:
    """The processor's name: machines of one "kind" differ (an AVX2 EPYC trained 2.4x slower than the machine
    of earlier results), and a fixed cost is a smaller share of a slower fit."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor())


def _finite(value: Any) -> Any:
    """Infinity and NaN as null: standard JSON has neither (a strategy that never reached a target)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def write_result(results_dir: Path, name: str, payload: dict[str, Any]) -> Path:
    """Write bench/results/<name> (or the --results folder a test passes) and say where."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / name
    path.write_text(json.dumps(_finite(payload), indent=1, default=str, allow_nan=False) + "\n")
    print(f"wrote {path}")
    return path


def watch_rss(proc: Any, limit_s: float, interval_s: float) -> tuple[int, int, bool]:
    """Sample the RSS of `proc` (a Popen) and all its descendants until it exits or `limit_s` passes.

    Returns (peak of the tree's sum, peak of its largest process, whether the limit was hit; the process
    is then killed). Sums over the tree, as decode pools and Ray workers live in child processes."""
    import time

    import psutil

    started, tree_peak, proc_peak = time.perf_counter(), 0, 0
    me = psutil.Process(proc.pid)
    while proc.poll() is None:
        total = 0
        for p in [me, *me.children(recursive=True)]:
            try:
                rss = p.memory_info().rss
            except psutil.Error:
                continue
            total, proc_peak = total + rss, max(proc_peak, rss)
        tree_peak = max(tree_peak, total)
        if time.perf_counter() - started > limit_s:
            proc.kill()
            return tree_peak, proc_peak, True
        time.sleep(interval_s)
    return tree_peak, proc_peak, False
