"""Allocation and decompression bombs are refused from their headers, before a decoder allocates anything.

Each bomb is a real file: a native header claiming 65535 x 65535 x 1000, BitsAllocated 64 on integer
pixel data, a JPEG 2000 or JPEG stream whose own header claims far more than the DICOM header, a deflated
dataset that inflates past the limit. tracemalloc (numpy reports its arrays to it) shows what reading
each one allocated.
"""

from __future__ import annotations

import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEG2000Lossless

from medtune.data.ingest import read_one
from medtune.data.limits import FileLimits
from medtune.data.pool import PoolStats, supervised_map
from medtune.data.sample import write_dicom

KEY = b"limits-test-key"


def small(path: Path, rows: int = 64, columns: int = 64, **extra: object) -> Path:
    pixels = (np.arange(rows * columns).reshape(rows, columns) % 4096).astype(np.uint16)
    write_dicom(path, pixels, "P1", "Acme", extra=extra or None)
    return path


def patch_header(path: Path, **values: object) -> Path:
    """Rewrite header values in place, leaving the pixel data as it was (the lie a bomb tells)."""
    ds = pydicom.dcmread(path)
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    ds.save_as(path)
    return path


def read_traced(path: Path, limits: FileLimits = FileLimits()) -> tuple[str | None, int]:
    """(reason, peak bytes allocated while reading) for one file."""
    tracemalloc.start()
    try:
        result = read_one(path, path.name, KEY, limits=limits)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result.reason, peak


def patch_codestream(path: Path, marker: bytes, offset: int, fmt: str, *values: int) -> Path:
    """Overwrite values in the compressed stream itself: after the (7FE0,0010) Pixel Data tag."""
    data = bytearray(path.read_bytes())
    at = data.find(marker, data.find(b"\xe0\x7f\x10\x00"))
    assert at > 0, "marker not found: the file is not what the test thinks"
    struct.pack_into(fmt, data, at + offset, *values)
    path.write_bytes(bytes(data))
    return path


def test_a_file_within_the_limits_is_accepted(tmp_path: Path) -> None:
    assert read_traced(small(tmp_path / "ok.dcm"))[0] is None


@pytest.mark.parametrize(("values", "reason"), [
    ({"Rows": 65535, "Columns": 65535, "NumberOfFrames": 1000}, "implausible_size"),
    ({"Rows": 65535, "Columns": 65535}, "implausible_size"),          # 4.3 gigapixels in one frame
    ({"NumberOfFrames": 100_000}, "implausible_size"),                # frames beyond max_frames
    ({"BitsAllocated": 64, "BitsStored": 64, "HighBit": 63}, "implausible_size"),  # no integer pixel is 64 bits
    ({"Rows": 4096, "Columns": 4096}, "truncated_pixel_data"),        # plausible size, bytes not there
])
def test_native_header_bombs_are_refused_before_allocation(tmp_path: Path, values: dict, reason: str) -> None:
    path = patch_header(small(tmp_path / "bomb.dcm"), **values)
    got, peak = read_traced(path)
    assert got == reason
    assert path.stat().st_size < 20_000 and peak < 2 * 1024 * 1024, f"reading it allocated {peak} bytes"


def test_a_jpeg2000_stream_claiming_more_than_its_header_is_refused(tmp_path: Path) -> None:
    path = small(tmp_path / "j2k.dcm")
    ds = pydicom.dcmread(path)
    ds.compress(JPEG2000Lossless, encoding_plugin="pylibjpeg")
    ds.save_as(path)
    assert read_traced(path)[0] is None  # the honest file decodes
    # SIZ after SOC: Xsiz, Ysiz, XOsiz, YOsiz, XTsiz, YTsiz. The DICOM header still says 64 x 64.
    patch_codestream(path, b"\xff\x4f\xff\x51", 8, ">IIIIII", 30000, 30000, 0, 0, 30000, 30000)
    reason, peak = read_traced(path)
    assert reason == "implausible_size" and peak < 2 * 1024 * 1024, f"reading it allocated {peak} bytes"


def test_a_jpeg_stream_claiming_more_than_its_header_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jpg.dcm"
    path.write_bytes(Path(get_testdata_file("SC_rgb_jpeg_dcmtk.dcm")).read_bytes())  # 100 x 100 RGB baseline
    assert read_traced(path)[0] is None
    patch_codestream(path, b"\xff\xc0", 5, ">HH", 60000, 60000)  # SOF0: height, width
    reason, peak = read_traced(path)
    assert reason == "implausible_size" and peak < 2 * 1024 * 1024, f"reading it allocated {peak} bytes"


def test_a_deflated_dataset_is_measured_before_pydicom_inflates_it(tmp_path: Path) -> None:
    path = small(tmp_path / "deflate.dcm")
    ds = pydicom.dcmread(path)
    ds.add_new(0x00091010, "LO", "medtune test")
    ds.add_new(0x00091011, "OB", bytes(3 * 1024 * 1024))  # 3 MB of zeros: deflates to a few kB
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    assert path.stat().st_size < 50_000
    assert read_traced(path)[0] is None  # within the default limit it reads
    reason, peak = read_traced(path, FileLimits(max_file_mb=1))
    assert reason == "implausible_size" and peak < 2.5 * 1024 * 1024, f"measuring it allocated {peak} bytes"


def test_a_file_larger_than_max_file_mb_is_not_parsed(tmp_path: Path) -> None:
    path = small(tmp_path / "big.dcm", 256, 256)
    assert read_traced(path, FileLimits(max_file_mb=0.05))[0] == "implausible_size"
    assert read_traced(path, FileLimits(max_file_mb=1))[0] is None


def test_what_no_header_foresees_hits_the_worker_memory_cap() -> None:
    """An allocation past worker_memory_mb fails inside the worker; the file is refused, the worker lives."""
    stats = PoolStats()
    sizes = [16, 3 * 1024**3, 16]  # bytearray(3 GB) under a 1.5 GB address-space cap
    out = list(supervised_map(bytearray, sizes, lambda item, reason: reason, workers=1, timeout_s=60,
                              memory_mb=1536, stats=stats))
    assert out == [bytearray(16), "implausible_size", bytearray(16)]
    assert stats.memory == 1 and stats.crashes == 0
