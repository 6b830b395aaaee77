"""Reading and decoding DICOM: the contract between files on disk and float32 arrays in [0, 1].

Nothing here returns identifying header values: `header_fields` is an allow-list, and `RejectedFile`
carries only a reason code, never a library message (those can quote element values).
"""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medtune.data.header import READ_REJECT_REASONS, RejectedFile, as_int, quiet, safe_get, safe_str

__all__ = ["ALLOWED_FIELDS", "READ_REJECT_REASONS", "RejectedFile", "check_image", "header_fields",
           "identifiers", "parse_dicom", "read_dicom"]

# snake_case report key -> DICOM keyword. Only these header values ever leave this module.
ALLOWED_FIELDS: dict[str, str] = {
    "modality": "Modality",
    "manufacturer": "Manufacturer",
    "model": "ManufacturerModelName",
    "body_part": "BodyPartExamined",
    "photometric": "PhotometricInterpretation",
    "rows": "Rows",
    "columns": "Columns",
    "bits_allocated": "BitsAllocated",
    "frames": "NumberOfFrames",
    "pixel_spacing": "PixelSpacing",
    "sop_class": "SOPClassUID",  # stored as its name ("CR Image Storage"), never as the UID
}
_INT_FIELDS = {"rows", "columns", "bits_allocated", "frames"}

# RTDOSE is a dose grid computed by a planning system, not an acquired image: nothing to classify.
NON_IMAGE_MODALITIES = {
    "SR", "RTSTRUCT", "RTPLAN", "RTRECORD", "RTDOSE", "SEG", "ECG", "KO", "PR", "DOC", "REG", "HD", "AU",
}
# Substrings of SOP Class names for objects that are not images (reports, plans, waveforms, masks).
_NON_IMAGE_SOP_WORDS = (
    " SR ", "SR Storage", "Waveform", "Presentation State", "Encapsulated", "Key Object", "RT Structure",
    "RT Plan", "RT Ion Plan", "RT Dose", "Treatment Record", "Segmentation", "Raw Data", "Registration",
    "Media Storage Directory", "Document",
)
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# First two bytes of a Part 10 file written without its 128-byte preamble: group 0002 (file meta)
# or 0008 (a bare dataset, as old modalities wrote), little or big endian.
_BARE_DATASET_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")
_MAX_PADDING = 3


def read_dicom(path: Path) -> Dataset:
    """Read one file as DICOM or raise RejectedFile (not_dicom, non_image_object, no_pixel_data, ...)."""
    ds = parse_dicom(path)
    check_image(ds, path)
    return ds


def parse_dicom(path: Path) -> Dataset:
    """Parse one file (with or without preamble/file meta) or raise RejectedFile('not_dicom')."""
    with quiet():
        try:
            return pydicom.dcmread(path, force=False)
        except InvalidDicomError:
            return _read_bare_dataset(Path(path))
        except Exception as exc:  # truncated header, bad tag lengths, unreadable file
            raise RejectedFile("not_dicom") from exc


def check_image(ds: Dataset, path: Path | None = None) -> None:
    """Raise RejectedFile unless `ds` is an image object that carries pixel data."""
    if _is_non_image(ds):
        raise RejectedFile("non_image_object")
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        # pydicom stops quietly at EOF inside an encapsulated (undefined length) Pixel Data element:
        # the tag is in the file but not in the dataset, so the file was cut short, not pixel-less.
        cut = path is not None and "IconImageSequence" not in ds and _has_pixel_tag(Path(path))
        raise RejectedFile("truncated_pixel_data" if cut else "no_pixel_data")


def _has_pixel_tag(path: Path) -> bool:
    """True when the bytes of (7FE0,0010) Pixel Data, little or big endian, occur in the file."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return False
    return b"\xe0\x7f\x10\x00" in data or b"\x7f\xe0\x00\x10" in data


def _read_bare_dataset(path: Path) -> Dataset:
    """Read a file without preamble/'DICM' only when its first bytes look like a DICOM tag.

    force=True parses anything (a README becomes a one-element 'dataset'), so it is tried only on files
    starting with group 0002/0008 (after at most _MAX_PADDING stray pad bytes, as left by tools that cut
    the file meta one byte off), and kept only if the result names a SOP class, modality or pixels.
    """
    try:
        with open(path, "rb") as handle:
            skip = _bare_start(handle.read(_MAX_PADDING + 2))
            if skip is None:
                raise RejectedFile("not_dicom")
            handle.seek(skip)
            # dcmread rewinds a file handle to 0 when it finds no preamble, so pass padded files as bytes.
            ds = pydicom.dcmread(handle if skip == 0 else io.BytesIO(handle.read()), force=True)
        looks_valid = any(k in ds for k in ("SOPClassUID", "Modality", *_PIXEL_KEYWORDS))
    except RejectedFile:
        raise
    except Exception as exc:
        raise RejectedFile("not_dicom") from exc
    if not looks_valid:
        raise RejectedFile("not_dicom")
    if "TransferSyntaxUID" not in ds.file_meta:
        # No file meta: record the encoding the parser detected so native pixel data can be decoded.
        implicit, little = ds.original_encoding
        syntax = {(True, True): ImplicitVRLittleEndian, (False, True): ExplicitVRLittleEndian}
        ds.file_meta.TransferSyntaxUID = syntax.get((implicit, little), ExplicitVRBigEndian)
    return ds


def _bare_start(head: bytes) -> int | None:
    """Offset of the first DICOM tag in `head` after optional space/NUL padding, or None."""
    for skip in range(_MAX_PADDING + 1):
        if head[skip:skip + 2] in _BARE_DATASET_STARTS:
            return skip
        if skip < len(head) and head[skip:skip + 1] not in (b" ", b"\x00"):
            return None
    return None


def _is_non_image(ds: Dataset) -> bool:
    """True for SR, RT plans/structures, segmentations, waveforms and other non-image objects."""
    modality = safe_str(ds, "Modality").upper()
    if modality in NON_IMAGE_MODALITIES:
        return True
    sop_name = _sop_class_name(ds)
    return any(word in f" {sop_name} " for word in _NON_IMAGE_SOP_WORDS)


def identifiers(ds: Dataset) -> tuple[str, str]:
    """(SOPInstanceUID, PatientID) as raw strings, for the caller to hash at once and then drop."""
    return safe_str(ds, "SOPInstanceUID"), safe_str(ds, "PatientID")


def _sop_class_name(ds: Dataset) -> str:
    """The SOP Class name; private or unknown classes become 'unknown' so no UID string leaks."""
    uid = safe_str(ds, "SOPClassUID") or safe_str(ds.file_meta, "MediaStorageSOPClassUID")
    if not uid:
        return ""
    with quiet():  # UID() warns about a malformed value and quotes it: in a damaged file, other elements too
        name = UID(uid).name
    return "unknown" if name == uid else name


def header_fields(ds: Dataset) -> dict[str, object]:
    """The allow-listed, non-identifying header fields under snake_case keys; missing -> '' or 0."""
    fields: dict[str, object] = {}
    for key, keyword in ALLOWED_FIELDS.items():
        if key == "sop_class":
            fields[key] = _sop_class_name(ds)
        elif key == "pixel_spacing":
            fields[key] = _pixel_spacing(ds)
        elif key in _INT_FIELDS:
            fields[key] = as_int(safe_get(ds, keyword, 0))
        else:
            fields[key] = safe_str(ds, keyword)[:64]
    if fields["frames"] == 0 and fields["rows"]:
        fields["frames"] = 1  # NumberOfFrames is absent on single-frame images
    fields["samples"] = as_int(safe_get(ds, "SamplesPerPixel", 1)) or 1
    fields["transfer_syntax"] = _transfer_syntax_name(ds)
    fields["has_window"] = str(fields["photometric"]).upper() in ("MONOCHROME1", "MONOCHROME2") and (
        "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds))
    return fields


def _transfer_syntax_name(ds: Dataset) -> str:
    """The transfer syntax's name (a standard UID, never identifying); '' when absent or private."""
    uid = safe_str(ds.file_meta, "TransferSyntaxUID")
    with quiet():
        name = UID(uid).name if uid else ""
    return name if name != uid else "unknown"


def _pixel_spacing(ds: Dataset) -> str:
    """PixelSpacing as 'row\\col' in mm, or '' when absent or malformed."""
    value = safe_get(ds, "PixelSpacing", None)
    try:
        return "\\".join(format(float(v), "g") for v in value) if value else ""  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return ""
