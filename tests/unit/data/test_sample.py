"""Sample cohort writers: real DICOM files that ingest accepts, and a cohort that needs a CNN."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from medtune.data.ingest import ingest
from medtune.data.sample import write_dicom, write_from_npz, write_synthetic
from medtune.errors import DataError

PNEUMONIAMNIST = Path(__file__).resolve().parents[4] / "shared/data/pneumoniamnist/pneumoniamnist.npz"


def test_write_dicom_is_part10_with_extras(tmp_path: Path) -> None:
    pixels = np.arange(12, dtype=np.uint16).reshape(3, 4)
    write_dicom(tmp_path / "x" / "a.dcm", pixels, "P7", "Acme", extra={"RescaleSlope": 2, "BodyPartExamined": "CHEST"})
    raw = (tmp_path / "x" / "a.dcm").read_bytes()
    assert raw[128:132] == b"DICM"
    ds = pydicom.dcmread(tmp_path / "x" / "a.dcm")
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.PatientID == "P7" and ds.Manufacturer == "Acme" and ds.RescaleSlope == 2
    np.testing.assert_array_equal(ds.pixel_array, pixels)
    with pytest.raises(ValueError, match="not a DICOM keyword"):
        write_dicom(tmp_path / "b.dcm", pixels, "P7", "Acme", extra={"NotAKeyword": 1})


def test_write_from_npz_layout_and_labels(tmp_path: Path, hmac_key: bytes) -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 4), ("val", 2), ("test", 3)):
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28)).astype(np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1)
    np.savez(tmp_path / "pneumoniamnist.npz", **arrays)
    n = write_from_npz(tmp_path / "pneumoniamnist.npz", tmp_path / "raw", tmp_path / "labels.csv", limit=3)
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert n == 8 == len(labels) and list(labels.columns) == ["path", "label", "split"]
    assert labels["split"].value_counts().to_dict() == {"train": 3, "test": 3, "val": 2}
    assert set(labels["label"]) == {"normal", "pneumonia"}
    ds = pydicom.dcmread(tmp_path / "raw" / labels["path"][1])
    np.testing.assert_array_equal(ds.pixel_array, arrays["train_images"][1])
    result = ingest(tmp_path / "raw", str(tmp_path / "labels.csv"), hmac_key)
    assert len(result.manifest) == 8 and result.manifest["patient_key"].nunique() == 8
    assert len(result.fingerprint["manufacturers"]) == 3


def test_other_medmnist_names_keep_integer_labels(tmp_path: Path) -> None:
    images = np.zeros((2, 8, 8), np.uint8)
    np.savez(tmp_path / "organamnist.npz", **{f"{s}_images": images for s in ("train", "val", "test")},
             **{f"{s}_labels": np.array([[3], [7]]) for s in ("train", "val", "test")})
    write_from_npz(tmp_path / "organamnist.npz", tmp_path / "raw", tmp_path / "labels.csv")
    assert set(pd.read_csv(tmp_path / "labels.csv", dtype=str)["label"]) == {"3", "7"}


def test_write_from_real_pneumoniamnist(tmp_path: Path, hmac_key: bytes) -> None:
    n = write_from_npz(PNEUMONIAMNIST, tmp_path / "raw", tmp_path / "labels.csv", limit=5)
    assert n == 15
    result = ingest(tmp_path / "raw", str(tmp_path / "labels.csv"), hmac_key)
    assert len(result.manifest) == 15 and set(result.manifest["split"]) == {"train", "val", "test"}
    assert set(result.manifest["rows"]) == {28}


def test_synthetic_cohort_is_deterministic_and_balanced(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "a", tmp_path / "a.csv", n_patients=8, images_per_patient=2, image_size=16)
    write_synthetic(tmp_path / "b", tmp_path / "b.csv", n_patients=8, images_per_patient=2, image_size=16)
    labels = pd.read_csv(tmp_path / "a.csv")
    assert list(labels.columns) == ["path", "label"] and len(labels) == 16
    assert labels["label"].value_counts().to_dict() == {"normal": 8, "abnormal": 8}
    assert labels.groupby(labels["path"].str.split("/").str[0])["label"].nunique().max() == 1
    for rel in labels["path"]:
        assert np.array_equal(pydicom.dcmread(tmp_path / "a" / rel).pixel_array,
                              pydicom.dcmread(tmp_path / "b" / rel).pixel_array)


def test_label_noise_relabels_whole_patients_and_keeps_their_images(tmp_path: Path) -> None:
    write_synthetic(tmp_path / "a", tmp_path / "a.csv", n_patients=20, images_per_patient=2, image_size=16)
    write_synthetic(tmp_path / "b", tmp_path / "b.csv", n_patients=20, images_per_patient=2, image_size=16,
                    label_noise=0.2)
    clean, noisy = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    flipped = clean["label"] != noisy["label"]
    patient = clean["path"].str.split("/").str[0]
    assert patient[flipped].nunique() == 4 and flipped.groupby(patient).nunique().max() == 1
    for rel in clean["path"]:
        assert np.array_equal(pydicom.dcmread(tmp_path / "a" / rel).pixel_array,
                              pydicom.dcmread(tmp_path / "b" / rel).pixel_array)
    with pytest.raises(DataError, match="label noise"):
        write_synthetic(tmp_path / "c", tmp_path / "c.csv", n_patients=4, task="multiclass", label_noise=0.2)


def test_synthetic_classes_are_not_separated_by_mean(tmp_path: Path, hmac_key: bytes) -> None:
    from medtune.data.preprocess import preprocess

    write_synthetic(tmp_path / "raw", tmp_path / "labels.csv", n_patients=60, images_per_patient=2, image_size=16)
    manifest = ingest(tmp_path / "raw", str(tmp_path / "labels.csv"), hmac_key).manifest
    assert (manifest["photometric"] == "MONOCHROME1").any()
    index = preprocess(manifest, tmp_path / "raw", tmp_path / "img.npy", image_size=16)
    images = np.load(tmp_path / "img.npy").reshape(len(index), -1)
    y = (index["label"] == "abnormal").to_numpy()
    assert abs(_auc(images.mean(axis=1), y) - 0.5) < 0.15
    # Every image holds a bright spot, so decoded pixels are right-skewed; a MONOCHROME1 file decoded
    # without inversion would show a dark spot (left skew).
    centred = images - images.mean(axis=1, keepdims=True)
    skew = (centred**3).mean(axis=1) / (centred**2).mean(axis=1) ** 1.5
    mono1 = (manifest["photometric"] == "MONOCHROME1").to_numpy()
    assert skew[mono1].mean() > 0.1 and skew[~mono1].mean() > 0.1


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    """Rank AUC (Mann-Whitney U): 0.5 means the score carries no class information."""
    ranks = pd.Series(score).rank().to_numpy()
    n_pos, n_neg = positive.sum(), (~positive).sum()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
