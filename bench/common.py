"""What every bench script writes alongside its numbers: the machine it ran on, one JSON per result."""

from __future__ import annotations

import json
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
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "load_avg_1m": round(os.getloadavg()[0], 2), "load_avg_5m": round(os.getloadavg()[1], 2),
            "torch": torch.__version__, "ray": ray.__version__, **extra}


def write_result(results_dir: Path, name: str, payload: dict[str, Any]) -> Path:
    """Write bench/results/<name> (or the --results folder a test passes) and say where."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / name
    path.write_text(json.dumps(payload, indent=1, default=str) + "\n")
    print(f"wrote {path}")
    return path
