"""Seeded mutations of real DICOM files: what damaged archives, buggy exporters and hostile senders produce.

Each mutated file is one of the real files shipped with pydicom, pydicom-data and nibabel (bench/corpus.py)
with one to three of MUTATIONS applied at the byte level, located by parsing the file first (element
offsets from pydicom's raw elements). Same seed, same sources -> byte-identical files, so any failure
is reproducible by its index.
"""

from __future__ import annotations

import io
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
)

from medtune.data.header import quiet

_LONG_VRS = {b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"OD", b"OL", b"OV", b"UC", b"UR", b"SV", b"UV"}
_ALL_VRS = [b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN", b"SH",
            b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US", *sorted(_LONG_VRS), b"\x00\x00", b"ZZ"]
_SYNTAXES = [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian,
             JPEGBaseline8Bit, JPEG2000Lossless, JPEGLSLossless, RLELossless, UID("1.2.826.0.1.3680043.10.999.1")]
_PIXEL_TAG = 0x7FE00010


@dataclass
class Element:
    """Where one top-level element sits in the file."""

    tag: int
    vr: bytes
    start: int          # offset of the tag
    length_at: int      # offset of the length field
    length_size: int    # 2 or 4 bytes
    value_at: int


@dataclass
class Layout:
    """What the mutations need to know about a file: its elements, encoding and meta group."""

    elements: list[Element]
    little: bool
    implicit: bool
    dataset_start: int  # first byte after the file meta group (0 when it has none)
    pixel_at: int       # offset of the pixel data value (len(data) when absent)
    sop_uid: str


def parse_layout(data: bytes) -> Layout | None:
    """Element offsets of the top-level dataset, or None when pydicom cannot parse it at all."""
    try:
        with quiet():
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            implicit, little = ds.original_encoding
            elements = []
            for tag in list(ds.keys()):
                raw = ds.get_item(tag)
                if raw is None or not hasattr(raw, "value_tell"):
                    continue
                elements.append(_element(int(tag), raw, bool(implicit)))
            meta_len = ds.file_meta.get("FileMetaInformationGroupLength")
            sop = str(ds.get("SOPInstanceUID", "") or "")
            start = 144 + int(meta_len) if meta_len is not None and data[128:132] == b"DICM" else 0
    except Exception:  # noqa: BLE001 - unparsable: only byte-level mutations apply
        return None
    pixel = next((e.value_at for e in elements if e.tag == _PIXEL_TAG), len(data))
    return Layout(elements, bool(little), bool(implicit), start, pixel, sop)


def _element(tag: int, raw: object, implicit: bool) -> Element:
    vr = (raw.VR or "").encode()  # type: ignore[attr-defined]
    value_at = raw.value_tell  # type: ignore[attr-defined]
    if implicit:
        return Element(tag, vr, value_at - 8, value_at - 4, 4, value_at)
    if vr in _LONG_VRS:
        return Element(tag, vr, value_at - 12, value_at - 4, 4, value_at)
    return Element(tag, vr, value_at - 8, value_at - 2, 2, value_at)


# Each mutation: (bytes, layout or None, rng) -> bytes. All fall back to a byte flip when they cannot apply.
def truncate(data: bytes, layout: Layout | None, rng: random.Random) -> bytes:
    """Cut the file short: anywhere, or (half the time) inside the pixel data."""
    if layout and layout.pixel_at < len(data) and rng.random() < 0.5:
        return data[:rng.randrange(layout.pixel_at, len(data))]
    return data[:rng.randrange(0, max(1, len(data)))]


def flip_header(data: bytes, layout: Layout | None, rng: random.Random) -> bytes:
    """XOR a few random bytes before the pixel data."""
    end = layout.pixel_at if layout else len(data)
    return _flip(data, 0, end, rng.randint(1, 8), rng)


def flip_pixels(data: bytes, layout: Layout | None, rng: random.Random) -> bytes:
    """XOR up to 64 random bytes of the pixel data (or the file's second half when it has none)."""
    start = layout.pixel_at if layout and layout.pixel_at < len(data) else len(data) // 2
    return _flip(data, start, len(data), rng.randint(1, 64), rng)


def _flip(data: bytes, start: int, end: int, n: int, rng: random.Random) -> bytes:
    if end <= start:
        start, end = 0, len(data)
    out = bytearray(data)
    for _ in range(n if out else 0):
        out[rng.randrange(start, end)] ^= rng.randint(1, 255)
    return bytes(out)


def wrong_vr(data: bytes, layout: Layout | None, rng: random.Random) -> bytes:
    """Replace one element's VR with another (changing how its length is read) on explicit-VR files."""
    if not layout or layout.implicit or not layout.elements:
        return flip_header(data, layout, rng)
    element = rng.choice(layout.elements)
    out = bytearray(data)
    out[element.start + 4:element.start + 6] = rng.choice(_ALL_VRS)
    return bytes(out)


def wrong_length(data: bytes, layout: Layout | None, rng: random.Random) -> bytes:
    """Give one element a wrong length: off by a little, zero, odd, or huge."""
    if not layout or not layout.elements:
        return flip_header(data, layout, rng)
    element = rng.choice(layout.elements)
    top = 0xFFFF if element.length_size == 2 else 0xFFFFFFFE
    old = _read_length(data, element, layout.little)
    new = rng.choice([max(0, old + rng.randint(-7, 7)), 0, old | 1, top, rng.randrange(top)])
    return _write_length(data, element, layout.little, new)


def undefined_length(data: bytes, layout: Layout | None, rng: random.Random) -> bytes:
    """Mark an element with a 4-byte length as undefined length (0xFFFFFFFF), or break a sequence delimiter."""
    candidates = [e for e in (layout.elements if layout else []) if e.length_size == 4]
    if not candidates or rng.random() < 0.2:
        at = data.find(b"\xfe\xff\xdd\xe0")  # a Sequence Delimitation Item
        if at < 0:
            return flip_header(data, layout, rng)
        return data[:at] + b"\xfe\xff\x00\xe0" + data[at + 4:]  # ... turned into an Item tag
    return _write_length(data, rng.choice(candidates), layout.little, 0xFFFFFFFF)  # type: ignore[union-attr]


def _read_length(data: bytes, element: Element, little: bool) -> int:
    fmt = ("<" if little else ">") + ("H" if element.length_size == 2 else "I")
    return struct.unpack_from(fmt, data, element.length_at)[0]


def _write_length(data: bytes, element: Element, little: bool, value: int) -> bytes:
    fmt = ("<" if little else ">") + ("H" if element.length_size == 2 else "I")
    out = bytearray(data)
    struct.pack_into(fmt, out, element.length_at, value)
    return bytes(out)


def lying_syntax(data: bytes, layout: Layout | None, rng: random.Random) -> bytes:
    """Rewrite the file meta so its Transfer Syntax UID names another encoding; the dataset is unchanged."""
    if not layout or not layout.dataset_start:
        return flip_header(data, layout, rng)
    try:
        with quiet():
            meta = pydicom.filereader.read_file_meta_info(io.BytesIO(data))
        current = meta.get("TransferSyntaxUID")
        meta.TransferSyntaxUID = rng.choice([s for s in _SYNTAXES if s != current])
        buffer = pydicom.filebase.DicomBytesIO()
        write_file_meta_info(buffer, meta, enforce_standard=True)
    except Exception:  # noqa: BLE001 - a meta group pydicom cannot rewrite
        return flip_header(data, layout, rng)
    return data[:128] + b"DICM" + buffer.getvalue() + data[layout.dataset_start:]


def huge_private(data: bytes, layout: Layout | None, rng: random.Random) -> bytes:
    """Insert a private block whose data element claims a huge length (or, rarely, really is large)."""
    if not layout or not layout.elements:
        return flip_header(data, layout, rng)
    at = next((e.start for e in layout.elements if e.tag >> 16 > 0x0009), len(data))
    roll = rng.random()
    declared, payload = ((0xFFFFFFF0, b"\x00" * 64) if roll < 0.6 else (0xFFFFFFFF, b"\x01" * 64)
                         if roll < 0.9 else (None, rng.randbytes(rng.randint(1, 4) * 1024 * 1024)))
    length = len(payload) if declared is None else declared
    end = "<" if layout.little else ">"
    creator = _encode(0x00090010, b"LO", b"MEDTUNEFUZZ ", layout, end, 12)
    element = _encode(0x00091001, b"OB", payload, layout, end, length)
    return data[:at] + creator + element + data[at:]


def _encode(tag: int, vr: bytes, value: bytes, layout: Layout, end: str, length: int) -> bytes:
    head = struct.pack(end + "HH", tag >> 16, tag & 0xFFFF)
    if layout.implicit:
        return head + struct.pack(end + "I", length) + value
    if vr in _LONG_VRS:
        return head + vr + b"\x00\x00" + struct.pack(end + "I", length) + value
    return head + vr + struct.pack(end + "H", length) + value


def header_bomb(data: bytes, layout: Layout | None, rng: random.Random) -> bytes:
    """Claim an enormous image: 65535 x 65535, a million frames, or 64-bit integer pixels."""
    try:
        with quiet():
            ds = pydicom.dcmread(io.BytesIO(data), force=True)
            choice = rng.randrange(3)
            if choice == 0:
                ds.Rows, ds.Columns = 65535, 65535
            elif choice == 1:
                ds.NumberOfFrames = rng.choice([1000, 1_000_000])
            else:
                ds.BitsAllocated, ds.BitsStored, ds.HighBit = 64, 64, 63
            out = io.BytesIO()
            ds.save_as(out, enforce_file_format=False)
    except Exception:  # noqa: BLE001 - cannot be rewritten: a byte flip instead
        return flip_header(data, layout, rng)
    return out.getvalue()


def codestream_bomb(data: bytes, layout: Layout | None, rng: random.Random) -> bytes:
    """In compressed pixel data, make the JPEG / JPEG 2000 stream's own header claim a huge frame."""
    start = layout.pixel_at if layout else 0
    out = bytearray(data)
    soc = data.find(b"\xff\x4f\xff\x51", start)
    if soc >= 0 and soc + 32 <= len(out):
        size = rng.choice([30000, 65535, 0x7FFFFFFF])
        struct.pack_into(">IIIIII", out, soc + 8, size, size, 0, 0, size, size)
        return bytes(out)
    sof = next((at for at in (data.find(bytes([0xFF, code]), start) for code in (0xC0, 0xC1, 0xC3, 0xF7))
                if at >= 0 and at + 9 <= len(out)), -1)
    if sof >= 0:
        struct.pack_into(">HH", out, sof + 5, 65535, 65535)
        return bytes(out)
    return header_bomb(data, layout, rng)


MUTATIONS: dict[str, Callable[[bytes, Layout | None, random.Random], bytes]] = {
    "truncate": truncate, "flip_header": flip_header, "flip_pixels": flip_pixels, "wrong_vr": wrong_vr,
    "wrong_length": wrong_length, "undefined_length": undefined_length, "lying_syntax": lying_syntax,
    "huge_private": huge_private, "header_bomb": header_bomb, "codestream_bomb": codestream_bomb,
}


def unique_uid(data: bytes, layout: Layout | None, index: int) -> bytes:
    """Give the file its own SOPInstanceUID (same length, so no offset moves): mutated copies of one
    source are then separate instances, each decoded and preprocessed, not duplicate_instance."""
    uid = layout.sop_uid if layout else ""
    if len(uid) < 12:
        return data
    new = uid[:-7] + "9" + f"{index:06d}"
    return data.replace(uid.encode(), new.encode())


def mutate(source: bytes, index: int, seed: int) -> tuple[bytes, list[str]]:
    """File `index` of the corpus seeded by `seed`: 1-3 mutations of `source`; returns (bytes, their names)."""
    rng = random.Random(f"{seed}:{index}")
    data = unique_uid(source, parse_layout(source), index)
    names = rng.choices(list(MUTATIONS), k=rng.choice([1, 1, 1, 2, 2, 3]))
    for name in names:
        layout = parse_layout(data)
        try:
            data = MUTATIONS[name](data, layout, rng)
        except Exception:  # noqa: BLE001 - a layout the mutation misjudged: flip bytes instead
            data = flip_header(data, None, rng)
    return data, names


def write_corpus(sources: list[Path], out_dir: Path, n_files: int, seed: int) -> list[tuple[str, str, list[str]]]:
    """Write n_files mutated files under out_dir and a labels.csv labelling every one; returns
    (relative path, source path, mutations) per file."""
    rng = random.Random(seed)
    rows, cache = [], {}
    for index in range(n_files):
        source = sources[rng.randrange(len(sources))]
        if source not in cache:
            cache = {source: source.read_bytes()}  # one source in memory at a time
        data, names = mutate(cache[source], index, seed)
        rel = f"f{index // 100:02d}/{index:05d}_{'+'.join(names)}.dcm"
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (out_dir / rel).write_bytes(data)
        rows.append((rel, str(source), names))
    labels = "path,label\n" + "".join(f"{rel},{('normal', 'abnormal')[i % 2]}\n"
                                       for i, (rel, _, _) in enumerate(rows))
    (out_dir.parent / "labels.csv").write_text(labels)
    return rows
