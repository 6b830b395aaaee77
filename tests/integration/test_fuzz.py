"""A seeded corpus of mutated real DICOM files through the real ingest and preprocess (worker pool, timeouts,
limits as in production): every file accepted or rejected with a reason code, 0 crashes, 0 hangs, and
scanned == accepted + rejected. `python -m bench.fuzz --files 1000` runs the same at full size."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import pytest
from bench.corpus import corpus_files
from bench.fuzz import crashes_and_hangs, run_stages
from bench.mutate import MUTATIONS, mutate, write_corpus

from medtune.data.ingest import REJECT_REASONS, read_one
from medtune.data.preprocess import load_sample

N_FILES = 120


def test_mutations_are_seeded_and_rerunnable() -> None:
    source = next(path for _, name, path in corpus_files() if name == "CT_small.dcm").read_bytes()
    assert mutate(source, 7, seed=1) == mutate(source, 7, seed=1)
    assert mutate(source, 7, seed=1)[0] != mutate(source, 7, seed=2)[0]


def test_fuzzed_corpus_ends_accepted_or_rejected_with_no_crash_or_hang(tmp_path: Path) -> None:
    rows = write_corpus([path for _, _, path in corpus_files()], tmp_path / "raw", N_FILES, seed=11)
    assert {name for _, _, names in rows for name in names} == set(MUTATIONS)  # every mutation exercised
    stages = run_stages(tmp_path / "raw", tmp_path / "labels.csv", tmp_path, workers=2, timeout_s=20.0,
                        memory_mb=2048.0)
    assert stages["stage_errors"] == []
    assert crashes_and_hangs(stages) == (0, 0), stages["faults"]
    assert stages["scanned"] == N_FILES == stages["accepted"] + stages["rejected"]
    assert set(stages["rejected_by_reason"]) <= set(REJECT_REASONS)
    assert stages["preprocessed"] == stages["accepted"] > 0  # what ingest accepts, preprocess decodes
    assert stages["rejected_by_reason"].get("implausible_size", 0) > 0  # the bombs were caught as such


def test_reading_fuzzed_files_emits_no_warning_or_log_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Library warnings and log records quote element values (PHI in a real archive): none may escape the
    readers, in this process (the decode workers also silence everything, as a second net)."""
    rows = write_corpus([path for _, _, path in corpus_files()], tmp_path / "raw", N_FILES, seed=12)
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for rel, _, _ in rows:
            if read_one(tmp_path / "raw" / rel, rel, b"fuzz-key").reason is None:
                load_sample(tmp_path / "raw" / rel, 32)
    assert not caught, [str(w.message)[:80] for w in caught[:3]]
    assert not caplog.records, [r.getMessage()[:80] for r in caplog.records[:3]]
