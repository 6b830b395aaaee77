"""Safe access to DICOM header values, and the one exception a file that cannot be used raises.

pydicom quotes element values (names, dates, UIDs) in its warnings and log records, and a malformed
element raises on access: every header read goes through `quiet`/`safe_get`, so neither PHI nor a
library traceback escapes. Shared by the reader (dicom.py) and the pixel chain (pixels.py).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

READ_REJECT_REASONS = (
    "not_dicom",
    "no_pixel_data",
    "non_image_object",
    "decode_error",
    "truncated_pixel_data",
    "unsupported_transfer_syntax",
    "implausible_size",  # the header claims more pixels, frames or bytes than ingest.max_* allow
    "decode_timeout",    # the decode ran past ingest.file_timeout_s; its worker was killed and replaced
    "decode_crash",      # the worker process died decoding it (a native decoder crashed or was OOM-killed)
)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence warnings and log records while a file is read: they quote element values (names, dates,
    UIDs). Every logger, not only pydicom's: decoder plug-ins (openjpeg, libjpeg) log under their own."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


class RejectedFile(Exception):
    """A file that cannot become a training image; `.reason` is one of READ_REJECT_REASONS."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def safe_get(ds: Dataset, keyword: str, default: object) -> object:
    """Element value or `default`; a malformed value (bad VR, unparsable number) counts as missing."""
    try:
        with quiet():
            value = ds.get(keyword, default)
    except Exception:  # noqa: BLE001 - any malformed value counts as missing, by design
        return default
    return default if value is None else value


def safe_str(ds: Dataset, keyword: str) -> str:
    """An element as stripped text, '' when missing or malformed. Turning some values into text validates
    or decodes them (a person name, a number in a mangled VR) and warns quoting them: it happens here."""
    try:
        with quiet():
            return str(safe_get(ds, keyword, "") or "").strip()
    except Exception:  # noqa: BLE001 - a value that cannot become text counts as missing
        return ""


def as_int(value: object) -> int:
    """First value of a possibly multi-valued number, or 0 when it is not a number."""
    if isinstance(value, (list, tuple, MultiValue)):
        value = value[0] if len(value) else 0
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0
