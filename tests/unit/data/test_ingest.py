"""Ingest: every file accepted or rejected with one reason, labels, fingerprint, PHI never leaks."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydicom.uid import BasicTextSRStorage, generate_uid

from medtune.data.files import scan_files
from medtune.data.ingest import REJECT_REASONS, ingest
from medtune.data.labels import read_labels
from medtune.data.phi import hash_id
from medtune.data.sample import write_dicom
from medtune.errors import DataError
from medtune.task import Task


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4096, (16, 16)).astype(np.uint16)


def append_labels(labels_csv: Path, rows: list[tuple[str, str]]) -> None:
    with open(labels_csv, "a") as handle:
        handle.writelines(f"{path},{label}\n" for path, label in rows)


def test_tiny_cohort_is_all_accepted(tiny_cohort: tuple[Path, Path], hmac_key: bytes) -> None:
    raw_dir, labels_csv = tiny_cohort
    result = ingest(raw_dir, str(labels_csv), hmac_key)
    m = result.manifest
    assert len(m) == 20 and result.rejected.empty and result.orphan_labels == 0
    assert list(m.columns[:5]) == ["sample_id", "path", "patient_key", "patient_order", "label"] and "target" in m
    assert result.task == Task("binary", ("normal", "abnormal"))  # normal is the obvious negative
    assert m["path"].is_monotonic_increasing and m["sample_id"].is_unique
    assert m["patient_key"].nunique() == 10
    # patient_order ranks the patients 0..9 (one rank per patient), independent of the HMAC key.
    assert sorted(m.groupby("patient_key")["patient_order"].first()) == list(range(10))
    assert (m.groupby("patient_key")["patient_order"].nunique() == 1).all()
    # "normal" is the negative word: the other label is the positive class (target 1).
    assert dict(zip(m["label"], m["target"])) == {"abnormal": 1, "normal": 0}
    assert result.fingerprint["task"]["positive_label"] == "abnormal"
    assert {"MONOCHROME1", "MONOCHROME2"} <= set(m["photometric"])
    fp = result.fingerprint
    assert fp["n_scanned"] == 20 and fp["n_patients"] == 10
    assert fp["task"] == {"kind": "binary", "names": ["normal", "abnormal"], "positive_label": "abnormal",
                          "per_class": {"normal": 10, "abnormal": 10}}
    assert fp["images_per_patient"] == {"min": 2, "median": 2.0, "max": 2}
    assert fp["intensity"]["CR"]["n_images"] == 20 and 0 <= fp["intensity"]["CR"]["p50"] <= 4095
    json.dumps(fp)  # plain JSON types only


def test_every_reject_reason_and_counts_reconcile(tiny_cohort: tuple[Path, Path], hmac_key: bytes) -> None:
    raw_dir, labels_csv = tiny_cohort
    bad = raw_dir / "bad"
    (bad / "notes.txt").parent.mkdir()
    (bad / "notes.txt").write_text("not an image\n")
    write_dicom(bad / "nopix.dcm", image(), "B1", "Acme", extra={"PixelData": None})
    write_dicom(bad / "short.dcm", image(), "B1", "Acme", extra={"PixelData": image().tobytes()[:99]})
    write_dicom(bad / "sr.dcm", image(), "B1", "Acme", extra={"SOPClassUID": BasicTextSRStorage, "Modality": "SR"})
    write_dicom(bad / "unlabeled.dcm", image(), "B1", "Acme")
    uid = generate_uid()
    write_dicom(bad / "dup_a.dcm", image(1), "B1", "Acme", extra={"SOPInstanceUID": uid})
    write_dicom(bad / "dup_b.dcm", image(2), "B1", "Acme", extra={"SOPInstanceUID": uid})
    (raw_dir / ".hidden.dcm").write_text("skipped")
    (raw_dir / "DICOMDIR").write_text("skipped")
    names = ["notes.txt", "nopix.dcm", "short.dcm", "sr.dcm", "dup_a.dcm", "dup_b.dcm"]
    append_labels(labels_csv, [(f"bad/{n}", "normal") for n in names] + [("gone/missing.dcm", "normal")])
    progress: list[tuple[int, int]] = []
    result = ingest(raw_dir, str(labels_csv), hmac_key, progress=lambda d, t: progress.append((d, t)))
    reasons = dict(zip(result.rejected["path"], result.rejected["reason"]))
    assert reasons == {
        "bad/notes.txt": "not_dicom", "bad/nopix.dcm": "no_pixel_data", "bad/short.dcm": "truncated_pixel_data",
        "bad/sr.dcm": "non_image_object", "bad/unlabeled.dcm": "unlabeled", "bad/dup_b.dcm": "duplicate_instance",
    }
    assert set(reasons.values()) <= set(REJECT_REASONS)
    assert "bad/dup_a.dcm" in set(result.manifest["path"])
    fp = result.fingerprint
    assert fp["n_scanned"] == 27 == fp["n_accepted"] + fp["n_rejected"] == len(result.manifest) + len(reasons)
    assert fp["rejected_by_reason"]["duplicate_instance"] == 1 and result.orphan_labels == 1
    assert progress[-1] == (27, 27)


def test_two_workers_match_one(tiny_cohort: tuple[Path, Path], hmac_key: bytes) -> None:
    raw_dir, labels_csv = tiny_cohort
    (raw_dir / "junk.bin").write_bytes(b"\x00" * 300)
    one = ingest(raw_dir, str(labels_csv), hmac_key, workers=1)
    two = ingest(raw_dir, str(labels_csv), hmac_key, workers=2)
    pd.testing.assert_frame_equal(one.manifest, two.manifest)
    pd.testing.assert_frame_equal(one.rejected, two.rejected)
    assert one.fingerprint == two.fingerprint


def test_phi_never_leaves_ingest(
    tmp_path: Path, hmac_key: bytes, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture
) -> None:
    markers = {
        "PatientName": "ZZNAMEMARK^QQ", "PatientID": "ZZPIDMARK", "InstitutionName": "ZZINSTMARK",
        "AccessionNumber": "ZZACCMARK", "StudyInstanceUID": "1.2.826.0.1.99999777", "PatientBirthDate": "19230417",
        "StationName": "ZZSTATMARK", "DeviceSerialNumber": "ZZSERIALMARK", "ReferringPhysicianName": "ZZREFMARK",
    }
    raw = tmp_path / "raw"
    write_dicom(raw / "ok.dcm", image(), "unused", "Acme", extra=markers)
    write_dicom(raw / "sick.dcm", image(), "unused", "Acme", extra=markers)
    write_dicom(raw / "unlabeled.dcm", image(), "unused", "Acme", extra=markers)
    write_dicom(raw / "nopix.dcm", image(), "unused", "Acme", extra={**markers, "PixelData": None})
    uid = write_uid(raw / "ok.dcm")
    (tmp_path / "labels.csv").write_text("path,label\nok.dcm,normal\nsick.dcm,sick\nnopix.dcm,normal\n")
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = ingest(raw, str(tmp_path / "labels.csv"), hmac_key)
    captured = capsys.readouterr()
    text = "\n".join([
        result.manifest.to_csv(), result.rejected.to_csv(), json.dumps(result.fingerprint), repr(result),
        caplog.text, captured.out, captured.err, *(str(w.message) for w in caught),
    ])
    assert len(result.manifest) == 2 and len(result.rejected) == 2
    for value in [*markers.values(), uid, "ZZNAMEMARK"]:
        assert value not in text
    ok = result.manifest.set_index("path").loc["ok.dcm"]
    assert ok["patient_key"] == hash_id("ZZPIDMARK", hmac_key) and ok["sample_id"] == hash_id(uid, hmac_key)


def write_uid(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path).SOPInstanceUID)


def test_missing_patient_id_groups_by_folder(tmp_path: Path, hmac_key: bytes) -> None:
    raw = tmp_path / "raw"
    for folder in ("a", "b"):
        for i in range(2):
            write_dicom(raw / folder / f"{i}.dcm", image(i), "", "Acme", extra={"PatientID": None})
    result = ingest(raw, "folders", hmac_key, positive_label="b")
    keys = result.manifest.groupby("label")["patient_key"].nunique()
    assert keys.to_dict() == {"a": 1, "b": 1} and result.manifest["patient_key"].nunique() == 2
    assert result.fingerprint["n_missing_patient_id"] == 4


def test_nothing_accepted_is_a_data_error(tmp_path: Path, hmac_key: bytes) -> None:
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "readme.txt").write_text("x")
    (tmp_path / "labels.csv").write_text("path,label\nreadme.txt,a\n")
    with pytest.raises(DataError, match="no usable image"):
        ingest(tmp_path / "raw", str(tmp_path / "labels.csv"), hmac_key)


def test_scan_files_skips_hidden_and_dicomdir(tmp_path: Path) -> None:
    for rel in ("b/2.dcm", "a/1.dcm", ".git/x", "a/.DS_Store", "DICOMDIR", "c/DICOMDIR"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    assert [p.relative_to(tmp_path).as_posix() for p in scan_files(tmp_path)] == ["a/1.dcm", "b/2.dcm"]


def test_read_labels_csv_and_folders(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    (raw / "cats").mkdir(parents=True)
    (raw / "cats" / "1.dcm").write_text("x")
    (raw / "top.dcm").write_text("x")
    csv = tmp_path / "labels.csv"
    csv.write_text(f"file,dx,split\n./cats/1.dcm,cat,train\n{raw / 'top.dcm'},dog,test\n")
    out = read_labels(str(csv), raw, path_column="file", label_column="dx")
    assert out.to_dict("list") == {"path": ["cats/1.dcm", "top.dcm"], "dx": ["cat", "dog"],
                                   "split": ["train", "test"]}
    folders = read_labels("folders", raw)
    assert folders.to_dict("list") == {"path": ["cats/1.dcm"], "label": ["cats"]}


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "labels file not found"),
        ("", "labels file is empty"),
        ("path,diagnosis\na.dcm,x\n", "no column 'label'"),
        ("path,label\n", "has no rows"),
        ("path,label,split\na.dcm,x,training\n", "'training'"),
        ("path,label\na.dcm,x\na.dcm,y\n", "more than once"),
        ("path,label\n,x\n", "line 2 has an empty 'path'"),
    ],
)
def test_bad_labels_files_raise_one_line(tmp_path: Path, content: str | None, message: str) -> None:
    csv = tmp_path / "labels.csv"
    if content is not None:
        csv.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        read_labels(str(csv), tmp_path)
    assert str(csv) in str(info.value) and "\n" not in str(info.value)
