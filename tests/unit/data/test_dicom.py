"""Reading and the decode chain on real pydicom-written files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import BasicTextSRStorage

from medtune.data.dicom import header_fields, read_dicom
from medtune.data.header import RejectedFile
from medtune.data.pixels import decode_pixels
from medtune.data.sample import write_dicom


def ramp(size: int = 16, high: int = 1000) -> np.ndarray:
    """A horizontal uint16 ramp 0..high: every column a distinct, known value."""
    return np.tile(np.linspace(0, high, size).round().astype(np.uint16), (size, 1))


def decode_file(path: Path, **kwargs: object) -> np.ndarray:
    return decode_pixels(read_dicom(path), **kwargs)


def test_decode_returns_float32_unit_range(tmp_path: Path) -> None:
    write_dicom(tmp_path / "a.dcm", ramp(), "P1", "Acme")
    out = decode_file(tmp_path / "a.dcm", window="minmax")
    assert out.dtype == np.float32 and out.shape == (16, 16)
    assert out.min() == 0.0 and out.max() == 1.0
    assert np.all(np.diff(out[0]) > 0)


def test_modality_lut_changes_output(tmp_path: Path) -> None:
    # Window 0..1000 in rescaled units: with slope 2 the stored ramp saturates halfway.
    window = {"WindowCenter": 500, "WindowWidth": 1000}
    write_dicom(tmp_path / "plain.dcm", ramp(), "P1", "Acme", extra=window)
    write_dicom(tmp_path / "scaled.dcm", ramp(), "P1", "Acme",
                extra={**window, "RescaleSlope": 2, "RescaleIntercept": 0})
    plain, scaled = decode_file(tmp_path / "plain.dcm"), decode_file(tmp_path / "scaled.dcm")
    assert plain[0, 8] == pytest.approx(0.53, abs=0.02)
    assert scaled[0, 8] == pytest.approx(1.0)
    assert not np.allclose(plain, scaled)


def test_monochrome1_is_inverted_so_bright_means_dense(tmp_path: Path) -> None:
    pixels = ramp()
    write_dicom(tmp_path / "m2.dcm", pixels, "P1", "Acme", photometric="MONOCHROME2")
    write_dicom(tmp_path / "m1.dcm", (1000 - pixels).astype(np.uint16), "P1", "Acme", photometric="MONOCHROME1")
    m2 = decode_file(tmp_path / "m2.dcm", window="minmax")
    m1 = decode_file(tmp_path / "m1.dcm", window="minmax")
    np.testing.assert_allclose(m1, m2, atol=1e-6)


def test_inverse_presentation_lut_inverts_once(tmp_path: Path) -> None:
    write_dicom(tmp_path / "inv.dcm", ramp(), "P1", "Acme", extra={"PresentationLUTShape": "INVERSE"})
    write_dicom(tmp_path / "m1inv.dcm", ramp(), "P1", "Acme", photometric="MONOCHROME1",
                extra={"PresentationLUTShape": "INVERSE"})
    inv = decode_file(tmp_path / "inv.dcm", window="minmax")
    assert inv[0, 0] == 1.0 and inv[0, -1] == 0.0
    np.testing.assert_allclose(decode_file(tmp_path / "m1inv.dcm", window="minmax"), inv)


def test_header_window_differs_from_percentile(tmp_path: Path) -> None:
    write_dicom(tmp_path / "w.dcm", ramp(), "P1", "Acme", extra={"WindowCenter": 200, "WindowWidth": 200})
    header = decode_file(tmp_path / "w.dcm", window="header")
    percentile = decode_file(tmp_path / "w.dcm", window="percentile", percentiles=(0.0, 100.0))
    # Header window 100..300: everything above 300 is white; the percentile window spans 0..1000.
    assert header[0, 8] == 1.0 and percentile[0, 8] == pytest.approx(0.53, abs=0.02)
    assert header[0, 0] == 0.0


def test_header_window_falls_back_to_percentiles(tmp_path: Path) -> None:
    pixels = ramp()
    pixels[0, 0] = 60000  # one hot pixel: percentile clipping ignores it, minmax does not
    write_dicom(tmp_path / "nowin.dcm", pixels, "P1", "Acme")
    header = decode_file(tmp_path / "nowin.dcm", window="header")
    np.testing.assert_allclose(header, decode_file(tmp_path / "nowin.dcm", window="percentile"))
    assert header[5, 8] > 10 * decode_file(tmp_path / "nowin.dcm", window="minmax")[5, 8]


def test_constant_image_gives_zeros_not_nan(tmp_path: Path) -> None:
    write_dicom(tmp_path / "c.dcm", np.full((8, 8), 77, np.uint16), "P1", "Acme")
    for window in ("header", "percentile", "minmax"):
        out = decode_file(tmp_path / "c.dcm", window=window)
        assert not np.isnan(out).any() and np.all(out == 0.0)


def test_multiframe_takes_middle_frame(tmp_path: Path) -> None:
    frames = np.stack([np.full((8, 8), v, np.uint8) for v in (10, 200, 30)])
    path = tmp_path / "mf.dcm"
    write_dicom(path, frames.reshape(24, 8), "P1", "Acme", extra={"Rows": 8, "NumberOfFrames": 3})
    ds = read_dicom(path)
    assert header_fields(ds)["frames"] == 3
    # Window 0..255 on 8-bit data: the middle frame (200) decodes to 200/255.
    ds.WindowCenter, ds.WindowWidth = 128, 256
    assert decode_pixels(ds)[0, 0] == pytest.approx(200 / 255, abs=0.01)


def test_header_fields_are_allow_listed(tmp_path: Path) -> None:
    write_dicom(tmp_path / "h.dcm", ramp(), "PAT-XYZ", "Acme", extra={"PixelSpacing": [0.5, 0.25]})
    fields = header_fields(read_dicom(tmp_path / "h.dcm"))
    assert fields["modality"] == "CR" and fields["manufacturer"] == "Acme"
    assert fields["rows"] == 16 and fields["bits_allocated"] == 16 and fields["frames"] == 1
    assert fields["pixel_spacing"] == "0.5\\0.25"
    assert fields["sop_class"] == "Computed Radiography Image Storage"
    assert fields["model"] == "" and fields["body_part"] == ""
    assert "PAT-XYZ" not in repr(fields) and "1.2." not in repr(fields)


def test_text_file_is_not_dicom(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("patient list\n")
    with pytest.raises(RejectedFile) as info:
        read_dicom(tmp_path / "notes.txt")
    assert info.value.reason == "not_dicom"


@pytest.mark.parametrize("keep_meta", [True, False])
def test_file_without_preamble_is_still_read(tmp_path: Path, keep_meta: bool) -> None:
    write_dicom(tmp_path / "a.dcm", ramp(), "P1", "Acme")
    ds = pydicom.dcmread(tmp_path / "a.dcm")
    ds.preamble = None
    if not keep_meta:  # a bare dataset, as old modalities wrote: the reader must infer the encoding
        del ds.file_meta
    ds.save_as(tmp_path / "bare.dcm", enforce_file_format=False, implicit_vr=False, little_endian=True)
    assert (tmp_path / "bare.dcm").read_bytes()[:2] == (b"\x02\x00" if keep_meta else b"\x08\x00")
    out = decode_file(tmp_path / "bare.dcm", window="minmax")
    assert out.shape == (16, 16) and out.max() == 1.0


def test_reject_reasons_for_bad_objects(tmp_path: Path) -> None:
    write_dicom(tmp_path / "nopix.dcm", ramp(), "P1", "Acme", extra={"PixelData": None})
    write_dicom(tmp_path / "sr.dcm", ramp(), "P1", "Acme", extra={"SOPClassUID": BasicTextSRStorage})
    write_dicom(tmp_path / "short.dcm", ramp(), "P1", "Acme", extra={"PixelData": ramp().tobytes()[:100]})
    assert _reason(lambda: read_dicom(tmp_path / "nopix.dcm")) == "no_pixel_data"
    assert _reason(lambda: read_dicom(tmp_path / "sr.dcm")) == "non_image_object"
    assert _reason(lambda: decode_file(tmp_path / "short.dcm")) == "truncated_pixel_data"


def test_unknown_transfer_syntax_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "mpeg.dcm"
    write_dicom(path, ramp(), "P1", "Acme")
    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = pydicom.uid.MPEG2MPML
    assert _reason(lambda: decode_pixels(ds)) == "unsupported_transfer_syntax"


def _reason(call) -> str:
    with pytest.raises(RejectedFile) as info:
        call()
    return info.value.reason
