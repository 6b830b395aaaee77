"""Which checkpoint a resumed trial falls back to when Ray deleted the one its saved state names
(the whole repair runs in tests/integration/test_tune_resume.py)."""

from __future__ import annotations

from pathlib import Path

from medtune.tune.restore import (
    CHECKPOINT_FILE,
    PROGRESS_FILE,
    TRAINER_FILE,
    newest_complete,
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
