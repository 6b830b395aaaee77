"""Preprocess: decode once into a (N, 1, S, S) float32 memmap plus an index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medtune.data.ingest import ingest
from medtune.data.preprocess import preprocess, resize
from medtune.data.sample import write_dicom
from medtune.errors import DataError


@pytest.fixture
def manifest(tiny_cohort: tuple[Path, Path], hmac_key: bytes) -> pd.DataFrame:
    raw_dir, labels_csv = tiny_cohort
    return ingest(raw_dir, str(labels_csv), hmac_key).manifest


def test_images_shape_dtype_range_and_index(
    manifest: pd.DataFrame, tiny_cohort: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "processed" / "images.npy"
    index = preprocess(manifest, tiny_cohort[0], out, image_size=24)
    images = np.load(out, mmap_mode="r")
    assert isinstance(images, np.memmap)
    assert images.shape == (20, 1, 24, 24) and images.dtype == np.uint8  # a quarter of float32's bytes
    assert images.std() > 0.05 * 255 and not list(out.parent.glob("*.partial"))
    assert list(index.columns) == [
        "row", "sample_id", "patient_key", "patient_order", "label", "target", "modality", "manufacturer",
        "pixel_hash",
    ]
    assert index["row"].tolist() == list(range(20))
    assert (index["sample_id"] == manifest["sample_id"]).all()
    assert index["pixel_hash"].str.len().eq(40).all() and index["pixel_hash"].is_unique


def test_two_workers_write_the_same_array(
    manifest: pd.DataFrame, tiny_cohort: tuple[Path, Path], tmp_path: Path
) -> None:
    one = preprocess(manifest, tiny_cohort[0], tmp_path / "one.npy", image_size=8, workers=1)
    two = preprocess(manifest, tiny_cohort[0], tmp_path / "two.npy", image_size=8, workers=2)
    pd.testing.assert_frame_equal(one, two)
    np.testing.assert_array_equal(np.load(tmp_path / "one.npy"), np.load(tmp_path / "two.npy"))


def test_monochrome1_rows_match_their_monochrome2_twin(tmp_path: Path, hmac_key: bytes) -> None:
    pixels = np.random.default_rng(0).integers(0, 4096, (32, 32)).astype(np.uint16)
    raw = tmp_path / "raw"
    write_dicom(raw / "a.dcm", pixels, "P1", "Acme", extra={"WindowCenter": 2048, "WindowWidth": 4096})
    write_dicom(raw / "b.dcm", (4095 - pixels).astype(np.uint16), "P2", "Acme", photometric="MONOCHROME1",
                extra={"WindowCenter": 2048, "WindowWidth": 4096})
    (tmp_path / "labels.csv").write_text("path,label,split\na.dcm,x,train\nb.dcm,y,test\n")
    manifest = ingest(raw, str(tmp_path / "labels.csv"), hmac_key, positive_label="y").manifest
    index = preprocess(manifest, raw, tmp_path / "img.npy", image_size=16)
    images = np.load(tmp_path / "img.npy")
    np.testing.assert_allclose(images[0], images[1], atol=1e-3)
    assert index["split"].tolist() == ["train", "test"]
    assert index["pixel_hash"].nunique() == 1  # same picture -> same hash, whatever the encoding


def test_resize_uses_area_when_shrinking() -> None:
    checker = np.indices((32, 32)).sum(axis=0) % 2
    small = resize(checker.astype(np.float32), 8)
    assert small.shape == (8, 8) and np.allclose(small, 0.5)  # area averaging, no aliasing
    assert resize(np.ones((4, 4), np.float32), 16).shape == (16, 16)


def test_undecodable_file_names_its_path(
    manifest: pd.DataFrame, tiny_cohort: tuple[Path, Path], tmp_path: Path
) -> None:
    raw_dir = tiny_cohort[0]
    broken = manifest["path"].iloc[3]
    (raw_dir / broken).write_bytes(b"no longer a DICOM file")
    with pytest.raises(DataError, match=broken):
        preprocess(manifest, raw_dir, tmp_path / "img.npy", image_size=8)


def test_empty_manifest_is_a_data_error(manifest: pd.DataFrame, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no rows"):
        preprocess(manifest.iloc[:0], tmp_path, tmp_path / "img.npy", image_size=8)


def multiframe_manifest(tmp_path: Path, hmac_key: bytes) -> tuple[pd.DataFrame, Path]:
    """One 3-frame file (values 10, 200, 30) and one single-frame file."""
    raw = tmp_path / "raw"
    frames = np.stack([np.full((8, 8), v, np.uint8) for v in (10, 200, 30)])
    window = {"WindowCenter": 128, "WindowWidth": 256}
    write_dicom(raw / "mf.dcm", frames.reshape(24, 8), "P1", "Acme", extra={"Rows": 8, "NumberOfFrames": 3, **window})
    write_dicom(raw / "sf.dcm", np.full((8, 8), 100, np.uint8), "P2", "Acme", extra=window)
    (tmp_path / "labels.csv").write_text("path,label\nmf.dcm,x\nsf.dcm,y\n")
    return ingest(raw, str(tmp_path / "labels.csv"), hmac_key, positive_label="y").manifest, raw


def test_every_frame_becomes_a_sample_of_the_same_patient(tmp_path: Path, hmac_key: bytes) -> None:
    manifest, raw = multiframe_manifest(tmp_path, hmac_key)
    index = preprocess(manifest, raw, tmp_path / "all.npy", image_size=8, frames="all")
    images = np.load(tmp_path / "all.npy")
    assert images.shape == (4, 1, 8, 8) and index["frame"].tolist() == [0, 1, 2, 0]
    np.testing.assert_allclose(images[:3, 0, 0, 0], [10, 200, 30], atol=3)
    assert index["sample_id"].is_unique and index["patient_key"].iloc[:3].nunique() == 1
    middle = preprocess(manifest, raw, tmp_path / "mid.npy", image_size=8, frames="middle")
    assert len(middle) == 2 and np.load(tmp_path / "mid.npy")[0, 0, 0, 0] == pytest.approx(200, abs=3)


def test_three_channels_keep_colour(tmp_path: Path, hmac_key: bytes) -> None:
    from pydicom.data import get_testdata_file

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "rgb.dcm").write_bytes(Path(get_testdata_file("SC_rgb.dcm")).read_bytes())
    write_dicom(raw / "gray.dcm", np.arange(64, dtype=np.uint16).reshape(8, 8), "P2", "Acme")
    (tmp_path / "labels.csv").write_text("path,label\nrgb.dcm,x\ngray.dcm,y\n")
    manifest = ingest(raw, str(tmp_path / "labels.csv"), hmac_key, positive_label="y").manifest
    preprocess(manifest, raw, tmp_path / "c3.npy", image_size=16, channels=3, workers=2)
    images = np.load(tmp_path / "c3.npy")
    assert images.shape == (2, 3, 16, 16)
    gray, rgb = images[0], images[1]  # rows follow the manifest's path order
    np.testing.assert_array_equal(gray[0], gray[2])
    assert not np.allclose(rgb[0], rgb[1])


def test_unknown_frame_policy_is_a_data_error(manifest: pd.DataFrame, tiny_cohort: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    with pytest.raises(DataError, match="frames"):
        preprocess(manifest, tiny_cohort[0], tmp_path / "x.npy", image_size=8, frames="first")
