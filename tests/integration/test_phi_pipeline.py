"""PHI never leaves ingest: identifying tags hold unique markers, the whole pipeline runs (`dvc repro`,
ingest -> test), and no marker shows up in any output file, log, the MLflow store or any file name.

The labels file is keyed by SOPInstanceUID here, so the UID join inside ingest is exercised too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
import yaml
from tests.integration._proc import run

from medtune.data.sample import write_dicom

pytestmark = [pytest.mark.slow, pytest.mark.ray]

UID_ROOT = "1.2.826.0.1.3680043.10.987654"  # every planted UID starts here: one string finds them all
TEXT_TAGS = ("PatientName", "InstitutionName", "InstitutionAddress", "AccessionNumber", "StationName",
             "DeviceSerialNumber", "ReferringPhysicianName", "OperatorsName", "StudyID", "OtherPatientIDs")


def plant_markers(project: Path) -> list[str]:
    """Rewrite every raw file with marker PHI and key labels.csv by SOPInstanceUID; return the markers."""
    raw, labels = project / "data/raw", project / "data/labels.csv"
    by_path = dict(line.split(",", 1) for line in labels.read_text().splitlines()[1:])
    rows, markers = ["SOPInstanceUID,label"], [UID_ROOT]
    for n, path in enumerate(sorted(raw.rglob("*.dcm"))):
        ds = pydicom.dcmread(path)
        patient = path.parent.name
        ds.PatientID = f"QXPID{patient}QX"
        ds.StudyInstanceUID = f"{UID_ROOT}.1.{n}"
        ds.SeriesInstanceUID = f"{UID_ROOT}.2.{n}"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{UID_ROOT}.3.{n}"
        for i, tag in enumerate(TEXT_TAGS):
            setattr(ds, tag, f"QX{i:02d}M{n:03d}QX")  # fits every VR's length limit (SH: 16)
        markers += [ds.PatientID, *(f"QX{i:02d}M{n:03d}QX" for i in range(len(TEXT_TAGS)))]
        ds.save_as(path, enforce_file_format=True)
        rows.append(f"{ds.SOPInstanceUID},{by_path[path.relative_to(raw).as_posix()].strip()}")
    rows.append(f"{UID_ROOT}.4.404,normal")  # a label for a file that does not exist
    pixels = pydicom.dcmread(path).pixel_array
    phi = {"PatientID": "QXPIDREJECTQX", "PatientName": "QXNAMEREJECTQX", "SOPInstanceUID": f"{UID_ROOT}.5.1"}
    write_dicom(raw / "extra/nopix.dcm", pixels, "x", "Acme", extra={**phi, "PixelData": None})
    (raw / "extra/notes.txt").write_text("not an image\n")
    labels.write_text("\n".join(rows) + "\n")
    return markers + list(phi.values())


def test_no_marker_leaves_ingest(project: Path) -> None:
    markers = plant_markers(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["ingest"]["label_key"] = "sop_instance_uid"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = run(["dvc", "repro"], project)

    fingerprint = json.loads((project / "reports/ingest/fingerprint.json").read_text())
    assert fingerprint["n_accepted"] == 48 and fingerprint["orphan_labels"] == 1
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
