"""The pixel chain: stored values -> modality units -> window -> [0, 1], bright = dense, 1 or 3 channels.

Order follows DICOM PS3.3 C.11: modality LUT (RescaleSlope/Intercept or a LUT), then VOI (VOI LUT,
WindowCenter/Width, a named preset or percentile clipping), then MONOCHROME1 / PresentationLUTShape.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, apply_windowing, pixel_array

from medtune.choices import CHANNELS, WINDOW_PRESETS, WINDOWS
from medtune.data.header import RejectedFile, as_int, quiet, safe_get, safe_str

_LUMA = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601


def n_frames(ds: Dataset) -> int:
    """NumberOfFrames, 1 when absent or malformed."""
    return max(as_int(safe_get(ds, "NumberOfFrames", 1)), 1)


def _frame(ds: Dataset, frame: int | None = None) -> np.ndarray:
    """Decode one frame: `frame` (0-based), or the middle one of a multi-frame object when None."""
    frames = n_frames(ds)
    index = frames // 2 if frame is None else frame
    if not 0 <= index < frames:
        raise ValueError(f"frame {index} out of range for {frames} frame(s)")
    try:
        with quiet():
            arr = pixel_array(ds, index=index if frames > 1 else None)
    except Exception as exc:
        raise RejectedFile(_reason_for(exc)) from exc
    if arr.ndim == 3 and arr.shape[-1] not in (3, 4):
        arr = arr[index]  # a decoder that ignored `index` and returned every frame
    return arr


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


def _photometric(ds: Dataset) -> str:
    return safe_str(ds, "PhotometricInterpretation").upper()


def _color(ds: Dataset, arr: np.ndarray) -> np.ndarray | None:
    """(H, W, 3) RGB in [0, 1] for colour data (palette or 3 samples), else None.

    pydicom's default decode already converted YBR_FULL(_422) to RGB, so 3 samples here are RGB.
    """
    if _photometric(ds) == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        top = 65535.0 if arr.dtype.itemsize > 1 else 255.0
    elif arr.ndim == 3:
        bits = as_int(safe_get(ds, "BitsStored", 0)) or 8 * arr.dtype.itemsize
        top = float(2 ** min(bits, 32) - 1)
    else:
        return None
    return np.clip(arr[..., :3].astype(np.float64) / top, 0.0, 1.0)


def modality_pixels(ds: Dataset, frame: int | None = None) -> np.ndarray:
    """Float64 (H, W) in modality units (e.g. HU): one frame, grayscale, modality LUT applied."""
    arr = _frame(ds, frame)
    try:
        rgb = _color(ds, arr)
        out = rgb @ _LUMA if rgb is not None else apply_modality_lut(arr, ds)
    except Exception as exc:  # malformed LUT or rescale values
        raise RejectedFile("decode_error") from exc
    if out.ndim != 2 or out.size == 0:
        raise RejectedFile("decode_error")
    return np.nan_to_num(np.asarray(out, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def decode_pixels(
    ds: Dataset, window: str = "header", percentiles: tuple[float, float] = (0.5, 99.5),
    frame: int | None = None,
) -> np.ndarray:
    """Float32 (H, W) in [0, 1], bright = dense: decode, modality LUT, window, MONOCHROME1 inversion.

    window: "header" (VOI LUT or WindowCenter/Width; percentile clipping if the header has none),
    "percentile", "minmax", or a WINDOW_PRESETS name (lung, bone, ...: a fixed window in modality units).
    Constant images give zeros, never NaN. `frame` None = the middle frame.
    """
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}, not {window!r}")
    return window_values(modality_pixels(ds, frame), ds, window, percentiles)


def window_values(
    values: np.ndarray, ds: Dataset, window: str, percentiles: tuple[float, float]
) -> np.ndarray:
    """Window modality values to float32 [0, 1] and apply MONOCHROME1 / INVERSE presentation."""
    scaled = _header_window(values, ds) if window == "header" else None
    if window in WINDOW_PRESETS:
        center, width = WINDOW_PRESETS[window]
        scaled = _scale(values, center - width / 2, center + width / 2)
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
    shape = safe_str(ds, "PresentationLUTShape").upper()
    if _photometric(ds) == "MONOCHROME1" or shape == "INVERSE":
        scaled = 1.0 - scaled
    return scaled.astype(np.float32)


def decode_channels(
    ds: Dataset, window: str = "header", percentiles: tuple[float, float] = (0.5, 99.5),
    channels: int = 1, frame: int | None = None,
) -> np.ndarray:
    """Float32 (C, H, W) in [0, 1]: C=1 grayscale (colour -> luma), C=3 RGB (grayscale repeated).

    Colour keeps its stored scale (windows are defined for grayscale only); grayscale is windowed.
    """
    if channels not in CHANNELS:
        raise ValueError(f"channels must be 1 or 3, not {channels!r}")
    if channels == 3:
        arr = _frame(ds, frame)
        try:
            rgb = _color(ds, arr)
        except Exception as exc:
            raise RejectedFile("decode_error") from exc
        if rgb is not None:
            return np.ascontiguousarray(rgb.transpose(2, 0, 1), dtype=np.float32)
    gray = decode_pixels(ds, window, percentiles, frame)
    return np.repeat(gray[None], channels, axis=0)


def has_header_window(ds: Dataset) -> bool:
    """True when the header carries a VOI LUT or a window (what window=header would use)."""
    return _photometric(ds) in ("MONOCHROME1", "MONOCHROME2") and (
        "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds))


def window_fields(ds: Dataset) -> dict[str, float | int]:
    """How many VOI LUTs + windows the header offers, and the (center, width) window=header applies.

    window=header takes the first VOI LUT, else the first WindowCenter/Width pair (DICOM's default view):
    CT series often carry several (soft tissue, lung, bone), so the fingerprint reports which one that is.
    Center/width are NaN when a VOI LUT (not a window) is applied or the header has none.
    """
    if not has_header_window(ds):
        return {"window_count": 0, "window_center": float("nan"), "window_width": float("nan")}
    luts = len(safe_get(ds, "VOILUTSequence", None) or [])
    centers, widths = (_as_list(safe_get(ds, k, None)) for k in ("WindowCenter", "WindowWidth"))
    pairs = min(len(centers), len(widths))
    try:
        center, width = (float(centers[0]), float(widths[0])) if pairs and not luts else (np.nan, np.nan)
    except (TypeError, ValueError):
        center, width = np.nan, np.nan
    return {"window_count": luts + pairs, "window_center": center, "window_width": width}


def _as_list(value: object) -> list:
    """A multi-valued element as a list; a single value as a one-element list; None as []."""
    if value is None or value == "":
        return []
    if isinstance(value, (str, bytes)):
        return [value]
    try:
        return list(value)  # type: ignore[call-overload]
    except TypeError:
        return [value]


def _header_window(values: np.ndarray, ds: Dataset) -> np.ndarray | None:
    """Apply the header's VOI LUT or window scaled to [0, 1]; None when the header has no usable one."""
    if not has_header_window(ds):
        return None
    try:
        with quiet():
            lut = safe_get(ds, "VOILUTSequence", None)
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
        return None
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
