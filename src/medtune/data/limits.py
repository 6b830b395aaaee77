"""Size limits checked before a file is read or decoded: a header cannot make a worker allocate a bomb.

A 200-byte file may claim 65535 x 65535 pixels x 1000 frames, a 5 kB JPEG 2000 stream may claim a frame
the size of a wall, and 2 MB of deflated dataset may inflate to 2 GB: decoders allocate what a header says
before they notice the data is not there. Each is rejected here, from headers alone, as `implausible_size`;
native (uncompressed) pixel data shorter than its header claims is `truncated_pixel_data`, also before any
array is allocated. What no header check foresees is capped by the decode workers' address-space limit
(`worker_memory_mb`, data/pool.py).
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from medtune.config import IngestCfg
from medtune.data.header import RejectedFile, as_int, quiet, safe_get

# Bits per stored value that pydicom decodes: integer pixel data is 1, 8, 16 or 32 bits;
# Float Pixel Data is 32 and Double Float Pixel Data 64 (PS3.5 8.1.1, PS3.3 C.7.6.3.1).
_BITS = {"PixelData": (1, 8, 16, 32), "FloatPixelData": (32,), "DoubleFloatPixelData": (64,)}
_MB = 1024 * 1024
_DEFLATED = b"1.2.840.10008.1.2.1.99"
_INFLATE_STEP = _MB  # inflate in steps this size, so measuring a bomb never allocates it
# JPEG start-of-frame markers (SOF0-15 but DHT, JPG, DAC) and JPEG-LS SOF55: height and width follow.
_JPEG_SOF = {*range(0xC0, 0xD0)} - {0xC4, 0xC8, 0xCC} | {0xF7}


@dataclass(frozen=True)
class FileLimits:
    """What one file may cost: pixels per frame, frames, megabytes (on disk and claimed), decode seconds.

    The size defaults admit every clinical image (a 4k x 5k mammogram is 20 MP; an enhanced CT has ~2000
    frames). timeout_s 0 means no timeout (and, with one worker, decoding in the calling process).
    """

    max_pixels: int = 40_000_000
    max_frames: int = 3000
    max_file_mb: float = 1024.0
    timeout_s: float = 0.0
    worker_memory_mb: float = 0.0  # address-space cap of each decode worker process (0: none)

    @classmethod
    def from_cfg(cls, cfg: IngestCfg) -> FileLimits:
        """The limits params.yaml `ingest:` sets (ingest and preprocess use the same)."""
        return cls(cfg.max_pixels, cfg.max_frames, cfg.max_file_mb, cfg.file_timeout_s, cfg.worker_memory_mb)


def check_file_size(path: Path, limits: FileLimits) -> None:
    """Refuse a file larger than max_file_mb before it is parsed (dcmread loads it whole), and a deflated
    dataset that inflates past max_file_mb (pydicom inflates it whole, in memory)."""
    try:
        size = os.stat(path).st_size
        with open(path, "rb") as handle:
            head = handle.read(4096)
    except OSError:
        return  # unreadable: the reader reports it
    if size > limits.max_file_mb * _MB:
        raise RejectedFile("implausible_size")
    if _DEFLATED in head and _inflated_size(path, head, limits.max_file_mb * _MB) > limits.max_file_mb * _MB:
        raise RejectedFile("implausible_size")


def _inflated_size(path: Path, head: bytes, cap: float) -> int:
    """Bytes the deflated dataset after the file meta inflates to, counted up to just past `cap`."""
    if head[128:132] != b"DICM" or head[132:136] != b"\x02\x00\x00\x00":
        return 0  # no preamble or no group length: pydicom's own reading decides
    start = 144 + struct.unpack_from("<I", head, 140)[0]  # preamble + DICM + (0002,0000) UL + the group
    inflater, total = zlib.decompressobj(-zlib.MAX_WBITS), 0
    with open(path, "rb") as handle:
        handle.seek(start)
        pending = handle.read(_INFLATE_STEP)
        try:
            while pending and total <= cap and not inflater.eof:  # bytes after the stream's end: padding
                total += len(inflater.decompress(pending, _INFLATE_STEP))
                pending = inflater.unconsumed_tail or handle.read(_INFLATE_STEP)
        except zlib.error:
            return total  # not deflate data: the reader rejects it
    return total


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
    if _is_encapsulated(ds):
        # A codestream's own header is what its decoder allocates for: it must not claim more values
        # than the DICOM header (a 64 x 64 file whose JPEG 2000 stream says 30000 x 30000).
        if any(n > rows * columns * samples for n in _codestream_sizes(ds, keyword)):
            raise RejectedFile("implausible_size")
    elif _stored_length(ds, keyword) < _native_length(ds, claimed):
        raise RejectedFile("truncated_pixel_data")


def _is_encapsulated(ds: Dataset) -> bool:
    """True for compressed transfer syntaxes (pixel data in fragments): their length says nothing of size."""
    syntax = safe_get(ds.file_meta, "TransferSyntaxUID", None) if hasattr(ds, "file_meta") else None
    try:
        return bool(syntax is not None and syntax.is_encapsulated)
    except (AttributeError, ValueError):  # a private or malformed UID: let the decoder judge it
        return True


def _codestream_sizes(ds: Dataset, keyword: str) -> Iterator[int]:
    """Width x height x components from the header of every JPEG, JPEG-LS or JPEG 2000 frame start."""
    from pydicom.encaps import generate_fragments

    try:
        with quiet():
            fragments = generate_fragments(ds[keyword].value)
            next(fragments)  # the Basic Offset Table
            for fragment in fragments:
                size = _jpeg_size(fragment) if fragment[:2] == b"\xff\xd8" else _j2k_size(fragment[:4096])
                if size is not None:
                    yield size
    except Exception:  # noqa: BLE001 - malformed fragments: the decoder rejects them
        return


def _jpeg_size(data: bytes) -> int | None:
    """Height x width x components of the first SOF segment, walking marker segments from SOI."""
    pos = 2
    while pos + 10 <= len(data) and data[pos] == 0xFF:
        code = data[pos + 1]
        if code == 0xFF:  # fill byte
            pos += 1
            continue
        if code in _JPEG_SOF:
            height, width, components = struct.unpack_from(">HHB", data, pos + 5)
            return height * width * components
        pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return None


def _j2k_size(data: bytes) -> int | None:
    """(Xsiz - XOsiz) x (Ysiz - YOsiz) x Csiz from the SIZ segment after SOC (raw or inside a JP2 box)."""
    at = data.find(b"\xff\x4f\xff\x51")
    if at < 0 or at + 42 > len(data):
        return None
    x, y, x0, y0 = struct.unpack_from(">IIII", data, at + 8)
    components = struct.unpack_from(">H", data, at + 40)[0]
    return max(x - x0, 0) * max(y - y0, 0) * components


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
