"""Planted PHI: unique markers in every identifying tag of a project's raw DICOM, for leak searches."""

from __future__ import annotations

from pathlib import Path

import pydicom

from medtune.data.sample import write_dicom

UID_ROOT = "1.2.826.0.1.3680043.10.987654"  # every planted UID starts here: one string finds them all
TEXT_TAGS = ("PatientName", "InstitutionName", "InstitutionAddress", "AccessionNumber", "StationName",
             "DeviceSerialNumber", "ReferringPhysicianName", "OperatorsName", "StudyID", "OtherPatientIDs")


def plant_markers(project: Path) -> list[str]:
    """Rewrite every raw file with marker PHI and key labels.csv by SOPInstanceUID; return the markers.

    Also adds a label row for a file that does not exist, a DICOM file without pixels and a text file.
    """
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
