"""Labels keyed by path, SOPInstanceUID, PatientID or StudyInstanceUID; identifiers join only as HMACs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medtune.data.ingest import ingest
from medtune.data.labels import read_labels
from medtune.data.sample import write_dicom
from medtune.errors import DataError

UID = "1.2.826.0.1.3680043.10.55555"


def cohort(tmp_path: Path) -> Path:
    """Two patients; patient A has two studies (2 + 1 images), patient B one study (1 image)."""
    raw = tmp_path / "raw"
    files = [("a/1.dcm", "PIDA", "1"), ("a/2.dcm", "PIDA", "1"), ("a/3.dcm", "PIDA", "2"), ("b/1.dcm", "PIDB", "3")]
    for n, (rel, pid, study) in enumerate(files):
        pixels = np.random.default_rng(n).integers(0, 4096, (8, 8)).astype(np.uint16)
        write_dicom(raw / rel, pixels, pid, "Acme",
                    extra={"SOPInstanceUID": f"{UID}.{n}", "StudyInstanceUID": f"{UID}.9{study}"})
    return raw


@pytest.mark.parametrize(("key", "csv", "labels"), [
    ("sop_instance_uid", f"SOPInstanceUID,label\n{UID}.0,x\n{UID}.1,y\n{UID}.2,x\n{UID}.3,y\n{UID}.77,y\n",
     ["x", "y", "x", "y"]),
    ("patient_id", "PatientID,label\nPIDA,sick\nPIDB,well\nPIDZ,well\n", ["sick", "sick", "sick", "well"]),
    ("study_instance_uid", f"StudyInstanceUID,label\n{UID}.91,x\n{UID}.92,y\n{UID}.93,y\n{UID}.99,x\n",
     ["x", "x", "y", "y"]),
])
def test_identifier_keyed_labels_join_and_count_orphans(
    tmp_path: Path, hmac_key: bytes, key: str, csv: str, labels: list[str]
) -> None:
    raw = cohort(tmp_path)
    (tmp_path / "labels.csv").write_text(csv)
    positive = "well" if key == "patient_id" else "y"
    result = ingest(raw, str(tmp_path / "labels.csv"), hmac_key, label_key=key, positive_label=positive)
    assert result.manifest["label"].tolist() == labels and result.rejected.empty
    assert result.orphan_labels == 1 and result.fingerprint["orphan_labels"] == 1
    # The identifiers were joined on, never kept.
    text = result.manifest.to_csv() + json.dumps(result.fingerprint)
    assert UID not in text and "PIDA" not in text and "PIDZ" not in text


def test_custom_key_column_and_unlabeled_files(tmp_path: Path, hmac_key: bytes) -> None:
    raw = cohort(tmp_path)
    (tmp_path / "labels.csv").write_text("pid,dx\nPIDA,sick\n")
    with pytest.raises(DataError, match="need at least 2 classes"):  # patient B is unlabeled: one class left
        ingest(raw, str(tmp_path / "labels.csv"), hmac_key, label_column="dx", label_key="patient_id",
               key_column="pid")



def test_file_without_patient_id_is_unlabeled_under_patient_key(tmp_path: Path, hmac_key: bytes) -> None:
    raw = cohort(tmp_path)
    write_dicom(raw / "c/1.dcm", np.zeros((8, 8), np.uint16), "", "Acme", extra={"PatientID": None})
    (tmp_path / "labels.csv").write_text("PatientID,label\nPIDA,x\nPIDB,y\n")
    result = ingest(raw, str(tmp_path / "labels.csv"), hmac_key, label_key="patient_id", positive_label="y")
    assert dict(zip(result.rejected["path"], result.rejected["reason"])) == {"c/1.dcm": "unlabeled"}


def test_label_for_a_rejected_file_is_not_an_orphan(tmp_path: Path, hmac_key: bytes) -> None:
    raw = cohort(tmp_path)
    write_dicom(raw / "c/nopix.dcm", np.zeros((8, 8), np.uint16), "PIDC", "Acme",
                extra={"PixelData": None, "SOPInstanceUID": f"{UID}.50"})
    (tmp_path / "labels.csv").write_text(f"SOPInstanceUID,label\n{UID}.0,x\n{UID}.1,y\n{UID}.50,y\n")
    result = ingest(raw, str(tmp_path / "labels.csv"), hmac_key, label_key="sop_instance_uid", positive_label="y")
    assert result.orphan_labels == 0 and "no_pixel_data" in set(result.rejected["reason"])


def test_clashing_identifier_rows_never_echo_the_identifier(tmp_path: Path, hmac_key: bytes) -> None:
    (tmp_path / "labels.csv").write_text("PatientID,label\nPIDSECRET,x\nPIDSECRET,y\n")
    with pytest.raises(DataError, match="more than once") as info:
        read_labels(str(tmp_path / "labels.csv"), tmp_path, key="patient_id", hmac_key=hmac_key)
    assert "PIDSECRET" not in str(info.value) and "'PatientID'" in str(info.value)


def test_unknown_label_key_is_a_data_error(tmp_path: Path, hmac_key: bytes) -> None:
    (tmp_path / "labels.csv").write_text("path,label\na,b\n")
    with pytest.raises(DataError, match="label_key"):
        read_labels(str(tmp_path / "labels.csv"), tmp_path, key="accession", hmac_key=hmac_key)
