"""Which checkpoint a resumed trial falls back to when Ray deleted the one its saved state names, and which
state files come back from the killed driver's staging folder (the whole repair runs in
tests/integration/test_tune_resume.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from ray import cloudpickle

from medtune.errors import MedtuneError
from medtune.tune.restore import (
    CHECKPOINT_FILE,
    PROGRESS_FILE,
    TRAINER_FILE,
    newest_complete,
    repair_cut_state,
    restore_missing_checkpoints,
)


def checkpoint(trial_dir: Path, index: int, files: tuple[str, ...] = (CHECKPOINT_FILE, TRAINER_FILE,
                                                                       PROGRESS_FILE)) -> Path:
    path = trial_dir / f"checkpoint_{index:06d}"
    path.mkdir(parents=True)
    for name in files:
        (path / name).write_text("x")
    return path


def test_the_newest_is_skipped_as_possibly_half_written(tmp_path: Path) -> None:
    checkpoint(tmp_path, 9)
    second = checkpoint(tmp_path, 10)
    checkpoint(tmp_path, 11)
    assert newest_complete(tmp_path) == second


def test_a_checkpoint_missing_a_file_is_never_chosen(tmp_path: Path) -> None:
    only = checkpoint(tmp_path, 100)
    checkpoint(tmp_path, 99, files=(CHECKPOINT_FILE,))
    assert newest_complete(tmp_path) == only  # the one whole checkpoint, though the newest
    assert newest_complete(tmp_path / "elsewhere") is None


def test_a_folder_without_sweep_state_needs_no_repair(tmp_path: Path) -> None:
    assert restore_missing_checkpoints(tmp_path) == {}


def test_a_cut_state_file_brings_back_the_whole_save_from_the_staging_folder(tmp_path: Path) -> None:
    sweep, ray_root = tmp_path / "ray_results" / "sweep", tmp_path / "ray"
    staging = ray_root / "session_1" / "artifacts" / "2026-12-06_10-00-00" / "sweep" / "driver_artifacts"
    sweep.mkdir(parents=True)
    staging.mkdir(parents=True)
    names = ("search_gen_state-t.json", "searcher-state-t.pkl")
    for name in names:  # the staging folder holds the newer save, whole
        (staging / name).write_bytes(cloudpickle.dumps({"save": 2}))
        (sweep / name).write_bytes(cloudpickle.dumps({"save": 1}))
    assert repair_cut_state(sweep, ray_root) == []  # nothing cut: nothing touched
    assert cloudpickle.loads((sweep / names[1]).read_bytes()) == {"save": 1}

    (sweep / names[0]).write_bytes(b"")
    assert repair_cut_state(sweep, ray_root) == list(names)  # one save: all of it, not a mix of two
    assert all(cloudpickle.loads((sweep / name).read_bytes()) == {"save": 2} for name in names)

    (sweep / names[0]).write_bytes(cloudpickle.dumps({"save": 2})[:5])
    (staging / names[0]).unlink()
    with pytest.raises(MedtuneError, match="search_gen_state-t.json was cut short.*--fresh"):
        repair_cut_state(sweep, ray_root)
