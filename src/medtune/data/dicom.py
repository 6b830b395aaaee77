"""Reading and decoding DICOM: the contract between files on disk and float32 arrays in [0, 1].

Nothing here returns identifying header values: `header_fields` is an allow-list, and `RejectedFile`
carries only a reason code, never a library message (those can quote element values).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, apply_windowing, pixel_array
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

READ_REJECT_REASONS = (
    "not_dicom",
    "no_pixel_data",
    "non_image_object",
    "decode_error",
    "truncated_pixel_data",
    "unsupported_transfer_syntax",
)
WINDOWS = ("header", "percentile", "minmax")

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

NON_IMAGE_MODALITIES = {"SR", "RTSTRUCT", "RTPLAN", "RTRECORD", "SEG", "ECG", "KO", "PR", "DOC", "REG"}
# Substrings of SOP Class names for objects that are not images (reports, plans, waveforms, masks).
_NON_IMAGE_SOP_WORDS = (
    " SR ", "SR Storage", "Waveform", "Presentation State", "Encapsulated", "Key Object", "RT Structure",
    "RT Plan", "RT Ion Plan", "Treatment Record", "Segmentation", "Raw Data", "Registration",
    "Media Storage Directory", "Document",
)
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
# First two bytes of a Part 10 file written without its 128-byte preamble: group 0002 (file meta)
# or 0008 (a bare dataset, as old modalities wrote), little or big endian.
_BARE_DATASET_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence pydicom's warnings and log records: they quote element values (names, dates, UIDs)."""
    logger = logging.getLogger("pydicom")
    was_disabled, logger.disabled = logger.disabled, True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled = was_disabled


class RejectedFile(Exception):
    """A file that cannot become a training image; `.reason` is one of READ_REJECT_REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_dicom(path: Path) -> Dataset:
    """Read one file as DICOM or raise RejectedFile (not_dicom, non_image_object, no_pixel_data)."""
    with _quiet():
        try:
            ds = pydicom.dcmread(path, force=False)
        except InvalidDicomError:
            ds = _read_bare_dataset(Path(path))
        except Exception as exc:  # truncated header, bad tag lengths, unreadable file
            raise RejectedFile("not_dicom") from exc
    if _is_non_image(ds):
        raise RejectedFile("non_image_object")
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise RejectedFile("no_pixel_data")
    return ds


def _read_bare_dataset(path: Path) -> Dataset:
    """Read a file without preamble/'DICM' only when its first bytes look like a DICOM tag.

    force=True parses anything (a README becomes a one-element 'dataset'), so it is tried only on files
    starting with group 0002/0008, and kept only if the result names a SOP class, modality or pixels.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(2)
        if head not in _BARE_DATASET_STARTS:
            raise RejectedFile("not_dicom")
        ds = pydicom.dcmread(path, force=True)
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


def _is_non_image(ds: Dataset) -> bool:
    """True for SR, RT plans/structures, segmentations, waveforms and other non-image objects."""
    modality = str(_safe_get(ds, "Modality", "")).strip().upper()
    if modality in NON_IMAGE_MODALITIES:
        return True
    sop_name = _sop_class_name(ds)
    return any(word in f" {sop_name} " for word in _NON_IMAGE_SOP_WORDS)


def _safe_get(ds: Dataset, keyword: str, default: object) -> object:
    """Element value or `default`; a malformed value (bad VR, unparsable number) counts as missing."""
    try:
        with _quiet():
            value = ds.get(keyword, default)
    except Exception:  # noqa: BLE001 - any malformed value counts as missing, by design
        return default
    return default if value is None else value


def identifiers(ds: Dataset) -> tuple[str, str]:
    """(SOPInstanceUID, PatientID) as raw strings, for the caller to hash at once and then drop."""
    uid = str(_safe_get(ds, "SOPInstanceUID", "")).strip()
    return uid, str(_safe_get(ds, "PatientID", "")).strip()


def _sop_class_name(ds: Dataset) -> str:
    """The SOP Class name; private or unknown classes become 'unknown' so no UID string leaks."""
    uid = _safe_get(ds, "SOPClassUID", "") or _safe_get(ds.file_meta, "MediaStorageSOPClassUID", "")
    if not uid:
        return ""
    name = UID(str(uid)).name
    return "unknown" if name == str(uid) else name


def header_fields(ds: Dataset) -> dict[str, object]:
    """The allow-listed, non-identifying header fields under snake_case keys; missing -> '' or 0."""
    fields: dict[str, object] = {}
    for key, keyword in ALLOWED_FIELDS.items():
        if key == "sop_class":
            fields[key] = _sop_class_name(ds)
        elif key == "pixel_spacing":
            fields[key] = _pixel_spacing(ds)
        elif key in _INT_FIELDS:
            fields[key] = _as_int(_safe_get(ds, keyword, 0))
        else:
            fields[key] = str(_safe_get(ds, keyword, "")).strip()[:64]
    if fields["frames"] == 0 and fields["rows"]:
        fields["frames"] = 1  # NumberOfFrames is absent on single-frame images
    return fields


def _as_int(value: object) -> int:
    """First value of a possibly multi-valued number, or 0 when it is not a number."""
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else 0
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def _pixel_spacing(ds: Dataset) -> str:
    """PixelSpacing as 'row\\col' in mm, or '' when absent or malformed."""
    value = _safe_get(ds, "PixelSpacing", None)
    try:
        return "\\".join(format(float(v), "g") for v in value) if value else ""  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return ""


def _reason_for(exc: Exception) -> str:
    """Map a pydicom/plugin decoding exception to a reject reason code."""
    message = str(exc)
    if isinstance(exc, NotImplementedError) or "missing dependencies" in message:
        return "unsupported_transfer_syntax"
    if "Transfer Syntax UID" in message:
        return "unsupported_transfer_syntax"
    if "less than expected" in message or "insufficient pixel data" in message:
        return "truncated_pixel_data"
    return "decode_error"


def _frame(ds: Dataset) -> np.ndarray:
    """Decode one frame: the only one, or the middle one of a multi-frame object."""
    frames = max(_as_int(_safe_get(ds, "NumberOfFrames", 1)), 1)
    index = frames // 2 if frames > 1 else None
    try:
        with _quiet():
            arr = pixel_array(ds, index=index)
    except Exception as exc:
        raise RejectedFile(_reason_for(exc)) from exc
    if arr.ndim == 3 and arr.shape[-1] not in (3, 4):
        arr = arr[arr.shape[0] // 2]  # a decoder that ignored `index`
    return arr


def modality_pixels(ds: Dataset) -> np.ndarray:
    """Float64 (H, W) in modality units (e.g. HU): one frame, grayscale, modality LUT applied."""
    arr = _frame(ds)
    photometric = str(_safe_get(ds, "PhotometricInterpretation", "")).upper()
    try:
        if photometric == "PALETTE COLOR":
            arr = apply_color_lut(arr, ds)
        if arr.ndim == 3:
            # pydicom's default decode already converted YBR_FULL(_422) to RGB (convert_color_space),
            # so a 3-sample array here is RGB: reduce to luma (ITU-R BT.601 weights).
            arr = arr[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
        else:
            arr = apply_modality_lut(arr, ds)
    except RejectedFile:
        raise
    except Exception as exc:  # malformed LUT or rescale values
        raise RejectedFile("decode_error") from exc
    if arr.ndim != 2 or arr.size == 0:
        raise RejectedFile("decode_error")
    return np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def decode_pixels(
    ds: Dataset, window: str = "header", percentiles: tuple[float, float] = (0.5, 99.5)
) -> np.ndarray:
    """Float32 (H, W) in [0, 1], bright = dense: decode, modality LUT, window, MONOCHROME1 inversion.

    window: "header" (VOI LUT or WindowCenter/Width; percentile clipping if the header has none),
    "percentile" (clip to `percentiles`), or "minmax". Constant images give zeros, never NaN.
    """
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}, not {window!r}")
    values = modality_pixels(ds)
    scaled = _header_window(values, ds) if window == "header" else None
    if scaled is None and window != "minmax":
        lo, hi = np.percentile(_subsample(values), percentiles)
        if hi <= lo:  # mostly flat image: the percentiles collapse, use the full range instead
            lo, hi = values.min(), values.max()
        scaled = _scale(values, lo, hi)
    if scaled is None:
        scaled = _scale(values, values.min(), values.max())
    # MONOCHROME1 stores dense tissue as low values. Windows in the header are defined on stored
    # values, so invert after windowing: every image then reads bright = dense, as MONOCHROME2 does.
    # PresentationLUTShape INVERSE asks for the same flip; on MONOCHROME1 it restates it (no double flip).
    photometric = str(_safe_get(ds, "PhotometricInterpretation", "")).upper()
    shape = str(_safe_get(ds, "PresentationLUTShape", "")).upper()
    if photometric == "MONOCHROME1" or shape == "INVERSE":
        scaled = 1.0 - scaled
    return scaled.astype(np.float32)


def _header_window(values: np.ndarray, ds: Dataset) -> np.ndarray | None:
    """Apply the header's VOI LUT or window scaled to [0, 1]; None when the header has no usable one."""
    photometric = str(_safe_get(ds, "PhotometricInterpretation", "")).upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return None
    try:
        with _quiet():
            lut = _safe_get(ds, "VOILUTSequence", None)
            if lut and "LUTDescriptor" in lut[0] and "LUTData" in lut[0]:
                entries, first, _bits = lut[0].LUTDescriptor
                # Map the LUT's first and last inputs to learn its output range.
                probe = np.array([first, first + (entries or 65536) - 1], dtype=np.int64)
                lo, hi = apply_voi(probe, ds)
                return _scale(apply_voi(np.rint(values).astype(np.int64), ds), lo, hi)
            if "WindowCenter" in ds and "WindowWidth" in ds:
                # The window's output range (y_min..y_max) is what very low / high inputs map to.
                lo, hi = apply_windowing(np.array([-1e30, 1e30]), ds)
                return _scale(apply_windowing(values.copy(), ds), lo, hi)
    except Exception:  # noqa: BLE001 - a malformed window (width < 1, bad LUT) is ignored, by design
        return None  # malformed window (width < 1, bad LUT): fall back to percentile clipping
    return None


def _subsample(values: np.ndarray, limit: int = 1 << 20) -> np.ndarray:
    """A strided view of at most ~`limit` pixels: percentiles of a 9-MP radiograph need no full sort."""
    flat = values.ravel()
    return flat[:: max(1, flat.size // limit)]


def _scale(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear map lo -> 0, hi -> 1, clipped; zeros when the range is empty or not finite."""
    lo, hi = float(lo), float(hi)
    if not np.isfinite(lo) or not np.isfinite(hi) or hi == lo:
        return np.zeros(values.shape, dtype=np.float64)
    return np.clip((values - lo) / (hi - lo), 0.0, 1.0)
