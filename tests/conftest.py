"""Shared fixtures: a tiny real-DICOM cohort written with pydicom, and a fixed HMAC key."""

from __future__ import annotations

from pathlib import Path

import pytest

from medtune.data.sample import write_synthetic


@pytest.fixture
def tiny_cohort(tmp_path: Path) -> tuple[Path, Path]:
    """20 real DICOM files (10 patients x 2 images, 16 px) and their labels.csv: (raw_dir, labels_csv)."""
    raw_dir, labels_csv = tmp_path / "raw", tmp_path / "labels.csv"
    write_synthetic(raw_dir, labels_csv, n_patients=10, images_per_patient=2, image_size=16, seed=0)
    return raw_dir, labels_csv


@pytest.fixture
def hmac_key() -> bytes:
    """A fixed HMAC key, so hashed ids are stable across tests."""
    return b"medtune-test-key-0123456789abcdef"
