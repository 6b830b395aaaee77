"""Leakage guards on real data: a planted DICOM cohort, PneumoniaMNIST's known duplicates, hash behaviour."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medtune.config import SplitCfg
from medtune.data.ingest import ingest
from medtune.data.leakage import (
    check_leakage,
    dhash,
    hash_image_rows,
    leakage_problems,
    leakage_report,
    near_duplicate_pairs,
)
from medtune.data.preprocess import preprocess
from medtune.data.sample import write_dicom
from medtune.data.split import make_splits, validate_splits
from medtune.errors import DataError

NPZ = Path(__file__).resolve().parents[4] / "shared/data/pneumoniamnist/pneumoniamnist.npz"


def brute_force_pairs(hashes: np.ndarray, max_distance: int) -> set[tuple[int, int]]:
    bits = np.unpackbits(hashes, axis=1).astype(int)
    dist = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    return {(i, j) for i, j in zip(*np.nonzero(dist <= max_distance)) if i < j}


def test_near_duplicate_pairs_match_brute_force_across_chunks() -> None:
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 256, (300, 32), dtype=np.uint8)
    hashes[150] = hashes[3]
    hashes[299] = hashes[10] ^ np.eye(32, dtype=np.uint8)[0]  # one bit apart
    # chunk=64: pairs across chunk borders must count too
    i, j, d = near_duplicate_pairs(hashes, max_distance=100, chunk=64)
    assert set(zip(i.tolist(), j.tolist())) == brute_force_pairs(hashes, 100)
    i, j, d = near_duplicate_pairs(hashes, max_distance=1, chunk=64)
    assert sorted(zip(i.tolist(), j.tolist(), d.tolist())) == [(3, 150, 0), (10, 299, 1)]
    groups = np.zeros(300, int)
    groups[299] = 1
    assert near_duplicate_pairs(hashes, 1, groups=groups)[0].tolist() == [10]  # only the cross-group pair


def test_dhash_ignores_noise_and_rescale_but_not_content() -> None:
    rng = np.random.default_rng(1)
    base = np.cumsum(np.cumsum(rng.normal(size=(20, 64, 64)), axis=1), axis=2)  # smooth, X-ray-like
    base = (base - base.min((1, 2), keepdims=True)) / np.ptp(base, axis=(1, 2), keepdims=True)
    noisy = np.clip(base + rng.normal(0, 0.005, base.shape), 0, 1)
    half = base.reshape(20, 32, 2, 32, 2).mean((2, 4))  # the same pictures at half the size

    def ham(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.unpackbits(dhash(a) ^ dhash(b), axis=1).sum(1)

    assert dhash(base).shape == (20, 32)
    # Faint noise stays well inside 12 bits; a rescaled copy mostly does (bin edges shift a little).
    assert ham(base, noisy).max() <= 12 and np.median(ham(base, half)) <= 12
    assert ham(base, np.roll(base, 7, axis=0)).min() > 40  # different pictures are far apart


@pytest.fixture
def planted(tmp_path: Path, hmac_key: bytes) -> tuple[pd.DataFrame, Path]:
    """12 patients x 2 images with the official split in labels.csv, plus three planted leaks."""
    rng = np.random.default_rng(0)
    raw, rows = tmp_path / "raw", []
    pictures = {}
    for p in range(12):
        split = ("train", "train", "val", "test")[p % 4]
        for k in range(2):
            pixels = rng.integers(0, 4096, (32, 32)).astype(np.uint16)
            pictures[(p, k)] = pixels
            rows.append((f"ward{p % 2}/p{p}/img{k}.dcm", f"c{p % 2}", split))
            write_dicom(raw / rows[-1][0], pixels, f"P{p}", "Acme", extra={"WindowCenter": 2048, "WindowWidth": 4096})
    leaks = [  # (path, pixels, patient id, split)
        ("other_folder/p0_again.dcm", rng.integers(0, 4096, (32, 32)).astype(np.uint16), "P0", "test"),
        ("copies/copy.dcm", pictures[(1, 0)], "P90", "val"),  # identical picture, new patient, new UIDs
        ("copies/near.dcm", np.clip(pictures[(1, 1)].astype(int) + rng.integers(-20, 21, (32, 32)), 0, 4095)
         .astype(np.uint16), "P91", "test"),  # the same picture with faint noise
    ]
    for path, pixels, patient, split in leaks:
        write_dicom(raw / path, pixels, patient, "Acme", extra={"WindowCenter": 2048, "WindowWidth": 4096})
        rows.append((path, "c0", split))
    (tmp_path / "labels.csv").write_text("path,label,split\n" + "".join(",".join(r) + "\n" for r in rows))
    manifest = ingest(raw, str(tmp_path / "labels.csv"), hmac_key, positive_label="c1").manifest
    images = tmp_path / "images.npy"
    index = preprocess(manifest, raw, images, image_size=32, window="header")
    return index, images


def test_planted_leaks_are_found_in_the_official_split_and_prevented_by_grouping(
    planted: tuple[pd.DataFrame, Path],
) -> None:
    index, images = planted
    hashes = hash_image_rows(images, index["row"].to_numpy())
    official = make_splits(index, SplitCfg(), seed=0)
    assert official["method"] == "fixed"
    report, table = leakage_report(official, index, hashes, max_distance=12)
    assert report["patients_in_multiple_splits"] == 1  # P0 in train (ward0) and test (other_folder)
    assert report["exact_duplicates_across_splits"] == 1  # the copy, train vs val
    assert report["near_duplicate_pairs_across_splits"] == 2  # the copy (0 bits) and the noisy one
    assert sorted(table["exact"]) == [False, True] and table["hamming"].max() <= 12
    assert len(leakage_problems(report)) == 3
    with pytest.raises(DataError, match="is in both train .* and test"):
        validate_splits(official, index)
    # A grouped split joins the patient, the copies and the near copy into one unit: nothing leaks.
    links = near_duplicate_pairs(hashes, 12)[:2]
    grouped = make_splits(index.drop(columns="split"), SplitCfg(method="grouped"), seed=0, links=links)
    clean, _ = leakage_report(grouped, index, hashes, max_distance=12)
    assert leakage_problems(clean) == []
    validate_splits(grouped, index)


def test_pneumoniamnist_official_split_has_its_known_train_val_duplicates() -> None:
    if not NPZ.is_file():
        pytest.skip(f"{NPZ} not present on this machine (CI has it)")
    data = np.load(NPZ)
    frames = []
    for split in ("train", "val", "test"):
        images = data[f"{split}_images"]
        frames.append(pd.DataFrame({
            "sample_id": [f"{split}{i}" for i in range(len(images))], "split": split,
            "pixel_hash": [hashlib.sha1(im.tobytes()).hexdigest() for im in images]}))
    index = pd.concat(frames, ignore_index=True).assign(patient_key=lambda d: d["sample_id"])
    splits = {s: index.loc[index["split"] == s, "sample_id"].tolist() for s in ("train", "val", "test")}
    pixels = np.concatenate([data[f"{s}_images"] for s in ("train", "val", "test")]) / 255.0
    report, table = leakage_report(splits, index, dhash(pixels), max_distance=12)
    assert report["exact_duplicates_across_splits"] == 8  # 8 pictures in both train and val
    assert report["exact_duplicate_pairs_by_splits"] == {"train-val": 10, "train-test": 0, "val-test": 0}
    # At 12 bits the near-duplicate search finds those copies and no distinct X-ray pair.
    assert report["near_duplicate_pairs_across_splits"] == 10 and table["exact"].all()
    assert report["near_duplicate_seconds"] < 5


def test_check_leakage_writes_both_reports_and_refuses_a_leak_when_strict(tmp_path: Path) -> None:
    index = pd.DataFrame({"sample_id": ["a", "b", "c", "d"], "patient_key": ["p1", "p1", "p2", "p3"],
                          "pixel_hash": ["h1", "h2", "h3", "h3"]})  # p1 in two splits; c and d identical
    splits = {"train": ["a", "c"], "val": ["b"], "test": ["d"]}
    hashes = np.packbits(np.eye(4, 256, dtype=bool), axis=1)
    hashes[3] = hashes[2]
    report, pairs = tmp_path / "split/leakage.json", tmp_path / "split/pairs.csv"
    line = check_leakage(splits, index, hashes, 1, False, report, pairs, split_hash="s1")
    assert line.startswith("leakage: 1 patient(s) in more than one split; 1 identical image(s)")
    assert line.endswith("over 4 images)")
    written = json.loads(report.read_text())
    assert (written["leaks"], written["strict"], written["split_hash"]) == (3, False, "s1")
    assert pd.read_csv(pairs)[["sample_id_a", "sample_id_b"]].values.tolist() == [["c", "d"]]
    with pytest.raises(DataError, match=f"split.strict: 1 patient.* \\(see {report}, {pairs}\\)"):
        check_leakage(splits, index, hashes, 1, True, report, pairs)
    clean = {"train": ["a", "b"], "val": ["c"], "test": []}
    assert check_leakage(clean, index.iloc[:3], hashes[:3], 1, True, report, pairs).startswith("leakage: none found")
