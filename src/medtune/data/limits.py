"""Size limits checked before a file is read or decoded: a header cannot make a worker allocate a bomb.

A 200-byte file may claim 65535 x 65535 pixels x 1000 frames, and a 5 kB JPEG 2000 stream may claim a
frame the size of a wall: decoders allocate what the header says before they notice the data is not
there. Both are rejected here, from the header alone, as `implausible_size`; native (uncompressed) pixel
data shorter than its header claims is `truncated_pixel_data`, also before any array is allocated.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from medtune.data.header import RejectedFile, as_int, quiet, safe_get

# Bits per stored value that pydicom decodes: integer pixel data is 1, 8, 16 or 32 bits;
# Float Pixel Data is 32 and Double Float Pixel Data 64 (PS3.5 8.1.1, PS3.3 C.7.6.3.1).
_BITS = {"PixelData": (1, 8, 16, 32), "FloatPixelData": (32,), "DoubleFloatPixelData": (64,)}
_MB = 1024 * 1024


@dataclass(frozen=True)
class FileLimits:
    """What one file may cost: pixels per frame, frames, megabytes (on disk and claimed), decode seconds.

    The size defaults admit every clinical image (a 4k x 5k mammogram is 20 MP; an enhanced CT has ~2000
    frames). timeout_s 0 means no timeout (and, with one worker, decoding in the calling process).
    """

    max_pixels: int = 40_000_000
    max_frames: int = 3000
    max_file_mb: float = 2048.0
    timeout_s: float = 0.0


def check_file_size(path: Path, limits: FileLimits) -> None:
    """Refuse a file larger than max_file_mb before a byte of it is read (dcmread loads it whole)."""
    try:
        size = os.stat(path).st_size
    except OSError:
        return  # unreadable: the reader reports it
    if size > limits.max_file_mb * _MB:
        raise RejectedFile("implausible_size")


def check_size(ds: Dataset, limits: FileLimits) -> None:
    """Raise RejectedFile before decoding when the header claims an image no decoder should allocate.

    implausible_size: Rows x Columns over max_pixels, NumberOfFrames over max_frames, a BitsAllocated
    no pixel data element can have, or Rows x Columns x Frames x Samples x Bits over max_file_mb.
    Missing or negative values are left to the decoder, which rejects them as it always has.
    truncated_pixel_data: native pixel data shorter than that claim.
    """
    keyword = next((k for k in _BITS if k in ds), None)
    if keyword is None:
        return  # check_image has already rejected files without pixel data
    rows, columns = as_int(safe_get(ds, "Rows", 0)), as_int(safe_get(ds, "Columns", 0))
    frames = max(as_int(safe_get(ds, "NumberOfFrames", 1)), 1)
    samples = max(as_int(safe_get(ds, "SamplesPerPixel", 1)), 1)
    bits = as_int(safe_get(ds, "BitsAllocated", 0))
    if keyword != "PixelData":
        bits = bits or _BITS[keyword][0]
    claimed = math.ceil(rows * columns * frames * samples * bits / 8)
    if (rows * columns > limits.max_pixels or frames > limits.max_frames or (bits and bits not in _BITS[keyword])
            or claimed > limits.max_file_mb * _MB):
        raise RejectedFile("implausible_size")
    if claimed == 0:
        return  # no Rows, Columns or BitsAllocated: nothing to size; the decoder rejects it (decode_error)
    if not _is_encapsulated(ds) and _stored_length(ds, keyword) < _native_length(ds, claimed):
        raise RejectedFile("truncated_pixel_data")


def _is_encapsulated(ds: Dataset) -> bool:
    """True for compressed transfer syntaxes (pixel data in fragments): their length says nothing of size."""
    syntax = safe_get(ds.file_meta, "TransferSyntaxUID", None) if hasattr(ds, "file_meta") else None
    try:
        return bool(syntax is not None and syntax.is_encapsulated)
    except (AttributeError, ValueError):  # a private or malformed UID: let the decoder judge it
        return True


def _stored_length(ds: Dataset, keyword: str) -> int:
    try:
        with quiet():
            return len(ds[keyword].value or b"")
    except Exception:  # noqa: BLE001 - an unreadable element holds no usable bytes
        return 0


def _native_length(ds: Dataset, claimed: int) -> int:
    """Bytes native pixel data must hold: pydicom's own count (YBR_FULL_422 stores 2 samples, not 3)."""
    from pydicom.pixels.utils import get_expected_length

    try:
        with quiet():
            return int(get_expected_length(ds, "bytes"))
    except Exception:  # noqa: BLE001 - a header pydicom cannot size: the plain product
        return claimed
