"""PHI never leaves ingest: identifying tags hold unique markers, the whole pipeline runs (`dvc repro`,
ingest -> test), and no marker shows up in any output file, log, the MLflow store or any file name.

The shared `finished` project is that run (tests/integration/_project.py): its labels file is keyed by
SOPInstanceUID, so the UID join inside ingest is exercised too.
"""

from __future__ import annotations

import json

import pytest
from tests.integration._project import N_FINISHED_IMAGES, Finished

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def test_no_marker_leaves_ingest(finished: Finished) -> None:
    project, markers, proc = finished.path, finished.markers, finished.repro
    fingerprint = json.loads((project / "reports/ingest/fingerprint.json").read_text())
    assert fingerprint["n_accepted"] == N_FINISHED_IMAGES and fingerprint["orphan_labels"] == 1
    assert fingerprint["rejected_by_reason"] == {"no_pixel_data": 1, "not_dicom": 1}
    assert (project / "reports/test/metrics.json").is_file()  # the pipeline ran to the end

    haystacks = {"dvc repro stdout": proc.stdout.encode(), "dvc repro stderr": proc.stderr.encode()}
    inputs = {project / "data/raw", project / "data/labels.csv", project / "src"}
    for path in sorted(project.rglob("*")):
        haystacks[f"file name {path}"] = path.name.encode()
        if path.is_file() and not path.is_symlink() and not any(p in inputs for p in (path, *path.parents)):
            haystacks[str(path.relative_to(project))] = path.read_bytes()
    assert any(name.startswith("mlruns.db") for name in haystacks)
    assert any(name.startswith("mlartifacts") for name in haystacks)
    assert any(name.startswith("ray_results") for name in haystacks)
    planted = b"".join(f.read_bytes() for f in sorted((project / "data").rglob("*")) if f.is_file())
    assert all(m.encode() in planted for m in markers)  # the search would find them: it can fail
    leaks = [(m, where) for m in markers for where, data in haystacks.items()
             if m.encode() in data or m.encode("utf-16-le") in data]
    assert not leaks, f"PHI markers found: {leaks[:10]}"
