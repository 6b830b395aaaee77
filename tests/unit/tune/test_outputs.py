"""What a finished sweep leaves: the k best trials' checkpoints outside the sweep folder, ranked, and a
clear error when no trial has one."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from medtune import paths
from medtune.config import SearchCfg
from medtune.errors import MedtuneError
from medtune.tune.outputs import keep_top_trials
from medtune.tune.results import SweepResult, ranked_trials


def board_of(tmp_path: Path, values: list[float | None], reasons: list[str]) -> pd.DataFrame:
    rows = []
    for i, (value, reason) in enumerate(zip(values, reasons)):
        ckpt = None
        if value is not None:
            ckpt = tmp_path / "sweep" / f"t{i}" / "model.pt"
            ckpt.parent.mkdir(parents=True)
            ckpt.write_bytes(f"weights of t{i}".encode())
        rows.append({"trial_id": f"t{i}", "best_val_auroc": value, "stop_reason": reason, "epochs_run": 2,
                     "checkpoint": str(ckpt) if ckpt else None, "config": json.dumps({"lr": 0.01 * (i + 1)})})
    return pd.DataFrame(rows)


def test_the_k_best_trials_are_kept_best_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    board = board_of(tmp_path, [0.7, 0.9, None, 0.8, 0.6], ["completed"] * 2 + ["error"] + ["asha_stopped"] * 2)
    paths.TOP_MODELS.mkdir(parents=True)
    (paths.TOP_MODELS / "9.pt").write_text("a stale checkpoint of an earlier sweep")
    result = SweepResult(board, ranked_trials(board, "max")[0], None, tmp_path / "sweep", {})
    kept = keep_top_trials(result, SearchCfg(mode="max", ensemble_top_k=3))
    assert [t["trial_id"] for t in kept] == ["t1", "t3", "t0"]
    assert [t["checkpoint"] for t in kept] == [str(paths.BEST_MODEL), "models/best/top/2.pt", "models/best/top/3.pt"]
    assert sorted(p.name for p in paths.TOP_MODELS.iterdir()) == ["2.pt", "3.pt"]  # the stale one is gone
    assert (paths.TOP_MODELS / "3.pt").read_bytes() == b"weights of t0"
    assert keep_top_trials(result, SearchCfg(mode="min", ensemble_top_k=1))[0]["trial_id"] == "t4"
    assert not any(paths.TOP_MODELS.iterdir())  # one trial kept: the folder (a DVC output) is empty


def test_no_checkpoint_says_whether_trials_failed_or_the_budget_ended_first(tmp_path: Path) -> None:
    with pytest.raises(MedtuneError, match="search.time_budget_s"):
        ranked_trials(board_of(tmp_path / "a", [None, None], ["no_result"] * 2), "max")
    with pytest.raises(MedtuneError, match="every trial failed"):
        ranked_trials(board_of(tmp_path / "b", [None, None], ["error", "no_result"]), "max")
