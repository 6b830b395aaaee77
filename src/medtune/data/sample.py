"""Sample cohorts as real DICOM Part 10 files: used by `medtune sample-data` and by test fixtures."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from medtune.choices import SPLIT_NAMES
from medtune.errors import DataError

VENDORS = ("Acme Imaging", "Borealis Medical", "Corvid Systems")  # invented names, no real vendor


def write_dicom(
    path: Path,
    pixels: np.ndarray,
    patient_id: str,
    manufacturer: str,
    modality: str = "CR",
    photometric: str = "MONOCHROME2",
    extra: dict | None = None,
) -> None:
    """Write a 2-D uint8/uint16 image as a DICOM Part 10 file (explicit VR little endian).

    `extra` sets further elements by keyword after the defaults (a value of None deletes one), e.g.
    RescaleSlope, WindowCenter, or PHI markers planted by tests.
    """
    if pixels.ndim != 2 or pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"pixels must be a 2-D uint8 or uint16 array, got {pixels.dtype} {pixels.shape}")
    bits = pixels.dtype.itemsize * 8
    ds = Dataset()
    is_cr = modality == "CR"
    ds.SOPClassUID = ComputedRadiographyImageStorage if is_cr else SecondaryCaptureImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientID = patient_id
    ds.PatientName = f"Sample^Patient{patient_id}"
    ds.Modality = modality
    ds.Manufacturer = manufacturer
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 0
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    for keyword, value in (extra or {}).items():
        if tag_for_keyword(keyword) is None:
            raise ValueError(f"extra: {keyword!r} is not a DICOM keyword")
        if value is None:
            ds.pop(keyword, None)
        else:
            setattr(ds, keyword, value)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_from_npz(npz: Path, out_dir: Path, labels_csv: Path, limit: int | None = None) -> int:
    """Write a MedMNIST .npz as one DICOM per image at out_dir/<split>/<index>.dcm, plus labels.csv.

    The public MedMNIST splits carry no patient IDs, so every image gets its own invented patient: a
    patient-grouped split of this data is only as leak-free as MedMNIST's own split.
    """
    try:
        data = np.load(npz)
    except (OSError, ValueError) as exc:
        raise DataError(f"{npz}: cannot be read as a MedMNIST .npz ({exc.__class__.__name__})") from exc
    named = Path(npz).stem == "pneumoniamnist"
    rows: list[tuple[str, str, str]] = []
    with data:
        for split in SPLIT_NAMES:
            if f"{split}_images" not in data.files:
                raise DataError(f"{npz}: no array '{split}_images'")
            images, labels = data[f"{split}_images"], data[f"{split}_labels"].reshape(-1)
            if images.ndim != 3 or images.dtype != np.uint8 or len(labels) != len(images):
                raise DataError(f"{npz}: '{split}_images' must be uint8 (N, H, W) with one label per image")
            count = len(images) if limit is None else min(limit, len(images))
            for index in range(count):
                rel = f"{split}/{index:05d}.dcm"
                write_dicom(out_dir / rel, images[index], f"{split}-{index:05d}", VENDORS[index % 3])
                value = int(labels[index])
                rows.append((rel, ("normal", "pneumonia")[value] if named else str(value), split))
    _write_labels(labels_csv, ["path", "label", "split"], rows)
    return len(rows)


def write_synthetic(
    out_dir: Path,
    labels_csv: Path,
    n_patients: int = 60,
    images_per_patient: int = 3,
    image_size: int = 32,
    seed: int = 0,
    task: str = "binary",
    label_noise: float = 0.0,
) -> int:
    """Write a deterministic cohort for `task` (binary by default), labels per patient (regression: per image).

    binary: "normal"/"abnormal": abnormal images hold a small bright ring, normal ones a filled blob of the
    same peak and mass, in textured noise with per-image random mean and contrast: global intensity
    statistics fail, a CNN works. multiclass: blob, ring or cross. multilabel: two independent findings,
    columns `ring` and `bar` (0/1). regression: column `radius`, the ring's radius in pixels. About a quarter
    of the images are stored MONOCHROME1 (inverted), so skipping the decode chain's inversion corrupts them.
    `label_noise` (binary): this fraction of patients is labelled the other way than their images show, as
    when readers disagree, so no model can be right about them and the signal is weak however long it trains.
    """
    if task not in SAMPLE_TASKS:
        raise DataError(f"sample-data: task {task!r} is not one of {', '.join(SAMPLE_TASKS)}")
    if label_noise and (task != "binary" or not 0 <= label_noise < 0.5):
        raise DataError(f"sample-data: label noise {label_noise} needs a binary task and a fraction in [0, 0.5)")
    rng = np.random.default_rng(seed)
    patients = _patient_labels(rng, n_patients, task)
    # Its own stream, so the images of a seed do not depend on the noise.
    mislabelled = set(np.random.default_rng([seed, 1]).permutation(n_patients)[:round(label_noise * n_patients)])
    rows: list[tuple[str, ...]] = []
    for patient in range(n_patients):
        vendor = VENDORS[patient % len(VENDORS)]
        for image in range(images_per_patient):
            values, label = _sample(rng, image_size, task, patients[patient])
            if patient in mislabelled:
                label = (BINARY_LABELS[label[0] == BINARY_LABELS[0]],)  # the other class
            stored = np.rint(values * 4095).astype(np.uint16)  # 12-bit detector range
            photometric = "MONOCHROME1" if rng.random() < 0.25 else "MONOCHROME2"
            if photometric == "MONOCHROME1":
                stored = 4095 - stored
            rel = f"p{patient:03d}/img{image}.dcm"
            write_dicom(
                out_dir / rel, stored, f"SYN{seed:02d}{patient:04d}", vendor,
                # A full-range window in the header: decoding maps stored values linearly, so the
                # matched means survive preprocessing (a per-image percentile window would not).
                photometric=photometric,
                extra={"BitsStored": 12, "HighBit": 11, "WindowCenter": 2048, "WindowWidth": 4096},
            )
            rows.append((rel, *label))
    _write_labels(labels_csv, ["path", *SAMPLE_COLUMNS[task]], rows)
    return len(rows)


SAMPLE_TASKS = ("binary", "multiclass", "multilabel", "regression")
BINARY_LABELS = ("normal", "abnormal")  # the binary cohort's label values; the second is the finding
SAMPLE_COLUMNS = {"binary": ["label"], "multiclass": ["label"], "multilabel": ["ring", "bar"],
                  "regression": ["radius"]}


def _patient_labels(rng: np.random.Generator, n_patients: int, task: str) -> list:
    """Each patient's finding(s): balanced classes, or independent coin flips per multilabel finding."""
    if task == "binary":
        return list(np.array(BINARY_LABELS)[rng.permutation(n_patients) % 2])
    if task == "multiclass":
        return list(np.array(["blob", "ring", "cross"])[rng.permutation(n_patients) % 3])
    if task == "multilabel":
        return [tuple(int(v) for v in rng.integers(0, 2, 2)) for _ in range(n_patients)]
    return [None] * n_patients  # regression: every image draws its own radius


def _sample(rng: np.random.Generator, size: int, task: str, finding: object) -> tuple[np.ndarray, tuple[str, ...]]:
    """One image and its label cells."""
    if task == "binary":
        return _synthetic_image(rng, size, abnormal=finding == BINARY_LABELS[1]), (str(finding),)
    if task == "multiclass":
        return _synthetic_image(rng, size, abnormal=finding == "ring", cross=finding == "cross"), (str(finding),)
    if task == "multilabel":
        ring, bar = finding  # type: ignore[misc]
        return _synthetic_image(rng, size, abnormal=bool(ring), bar=bool(bar)), (str(ring), str(bar))
    radius = float(rng.uniform(size / 14, size / 5))
    return _synthetic_image(rng, size, abnormal=True, radius=radius), (f"{radius:.2f}",)


def _synthetic_image(rng: np.random.Generator, size: int, abnormal: bool, cross: bool = False,
                     bar: bool = False, radius: float | None = None) -> np.ndarray:
    """Textured noise in [0, 1] with one bright spot: a ring (abnormal), a cross, or a filled blob (normal),
    plus optionally a short bright bar elsewhere.

    Blob and ring carry about the same mass and peak statistics, and each image's mean and std are then
    drawn afresh, so only the spot's shape tells the classes apart.
    """
    noise = rng.normal(0.0, 1.0, (size, size)).astype(np.float32)
    texture = cv2.GaussianBlur(noise, (0, 0), sigmaX=max(size / 16, 0.8))
    texture = 0.12 * texture / (texture.std() + 1e-6)
    radius = radius if radius is not None else max(size / 10, 1.5)
    yy, xx = np.mgrid[0:size, 0:size]
    cy, cx = rng.uniform(radius + 2, size - radius - 2, 2)
    dist = np.hypot(yy - cy, xx - cx)
    # The ring's peak is lower because it has more pixels near its peak than a blob: with these
    # amplitudes max and top percentiles separate the classes barely better than chance.
    if cross:  # two perpendicular strokes through the centre, the ring's mass spread along lines
        arm = (np.abs(yy - cy) < radius) & (np.abs(xx - cx) < radius)
        spot = 0.35 * arm * (np.exp(-((yy - cy) ** 2) / 0.8) + np.exp(-((xx - cx) ** 2) / 0.8))
    elif abnormal:
        spot = 0.35 * np.exp(-((dist - radius) ** 2) / 0.8)
    else:
        sigma2 = radius * np.sqrt(0.8 * np.pi) / 2 * 0.35 / 0.45  # blob mass = ring mass
        spot = 0.45 * np.exp(-(dist**2) / (2 * sigma2))
    image = texture + spot
    if bar:  # a horizontal stroke in the half of the image away from the spot
        row = size / 4 if cy > size / 2 else 3 * size / 4
        image = image + 0.35 * np.exp(-((yy - row) ** 2) / 0.8) * (np.abs(xx - size / 2) < size / 4)
    image = (image - image.mean()) / (image.std() + 1e-6)
    return np.clip(image * rng.uniform(0.10, 0.14) + rng.uniform(0.4, 0.6), 0.0, 1.0)


def _write_labels(labels_csv: Path, header: list[str], rows: list[tuple[str, ...]]) -> None:
    """Write the labels file: one row per image, paths relative to the image folder."""
    Path(labels_csv).parent.mkdir(parents=True, exist_ok=True)
    with open(labels_csv, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
