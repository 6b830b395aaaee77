"""Every DICOM file shipped inside packages (pydicom, pydicom-data, nibabel) ends accepted or rejected
with the reason recorded in corpus_expected.csv: no crash, no silent change of outcome.

The corpus holds the awkward cases: no preamble, truncated pixel data, bad VR, RT/SR/SEG objects,
JPEG/JPEG 2000/RLE/JPEG-LS/deflate, big endian, multi-frame, palette and YBR colour.
Regenerate the table with `python bench/corpus.py --write-expected` and review the diff by hand.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from bench.corpus import EXPECTED, classify, corpus_files

from medtune.data.ingest import REJECT_REASONS


@pytest.fixture(scope="module")
def outcomes() -> list[dict]:
    return classify(corpus_files(), key=b"corpus-test-key")


def test_every_file_has_its_expected_outcome(outcomes: list[dict]) -> None:
    with open(EXPECTED, newline="") as handle:
        expected = {(r["source"], r["file"]): r["outcome"] for r in csv.DictReader(handle)}
    got = {(r["source"], r["file"]): r["outcome"] for r in outcomes}
    assert len(got) > 240 and {s for s, _ in got} == {"pydicom", "pydicom-data", "nibabel"}
    assert set(got.values()) <= {"accepted", *REJECT_REASONS}
    changed = {k: (expected.get(k), v) for k, v in got.items() if expected.get(k) != v}
    assert not changed, f"outcome changed (expected, got): {changed}"
    assert set(expected) == set(got)  # no file vanished from the corpus unnoticed


@pytest.mark.parametrize(("name", "reason"), [
    ("MR_truncated.dcm", "truncated_pixel_data"),             # pixel data shorter than Rows x Columns
    ("emri_small_jpeg_2k_lossless_too_short.dcm", "truncated_pixel_data"),  # cut inside encapsulated data
    ("rtstruct.dcm", "non_image_object"), ("waveform_ecg.dcm", "non_image_object"),
    ("liver.dcm", "non_image_object"), ("test-SR.dcm", "non_image_object"),
    ("README.txt", "not_dicom"), ("meta_missing_tsyntax.dcm", "unsupported_transfer_syntax"),
    # Its JPEG 2000 header claims 3.8e12 pixels in a 1024 x 256 image: refused before the decoder allocates.
    ("JPEG2000-embedded-sequence-delimiter.dcm", "implausible_size"),
    ("no_meta.dcm", "accepted"),                              # no preamble, no file meta, one stray pad byte
    ("ExplVR_BigEndNoMeta.dcm", "non_image_object"),          # no preamble, big endian: read, then judged
    ("image_dfl.dcm", "accepted"), ("MR_small_RLE.dcm", "accepted"), ("JPEG2000.dcm", "accepted"),
    ("MR_small_jpeg_ls_lossless.dcm", "accepted"), ("JPGExtended.dcm", "accepted"),
    ("MR_small_bigendian.dcm", "accepted"), ("SC_rgb_jpeg_dcmtk.dcm", "accepted"),
])
def test_known_inhabitants(outcomes: list[dict], name: str, reason: str) -> None:
    assert {r["outcome"] for r in outcomes if Path(r["file"]).name == name} == {reason}


def test_patient_spread_over_two_folders_keeps_one_key(outcomes: list[dict]) -> None:
    keys = {r["file"].split("/")[1]: set() for r in outcomes if r["file"].startswith("dicomdirtests/9")}
    for r in outcomes:
        if r["file"].startswith("dicomdirtests/9") and r["outcome"] == "accepted":
            keys[r["file"].split("/")[1]].add(r["patient_key"])
    # 98892001 and 98892003 hold the same PatientID: one hashed patient, so one split.
    assert keys["98892001"] == keys["98892003"] and len(keys["98892001"]) == 1
