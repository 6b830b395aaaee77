"""The pixel chain beyond the basics: presets, colour to channels, frame choice, header-window detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from medtune.choices import WINDOW_PRESETS
from medtune.data.dicom import header_fields, read_dicom
from medtune.data.pixels import decode_channels, decode_pixels
from medtune.data.sample import write_dicom


def hu_ramp(tmp_path: Path) -> Path:
    """A CT-like ramp of stored 0..2000 with intercept -1000: -1000..1000 HU across the columns."""
    stored = np.tile(np.linspace(0, 2000, 21).round().astype(np.uint16), (4, 1))
    path = tmp_path / "ct.dcm"
    write_dicom(path, stored, "P1", "Acme", modality="CT",
                extra={"RescaleSlope": 1, "RescaleIntercept": -1000, "WindowCenter": 0, "WindowWidth": 2000})
    return path


@pytest.mark.parametrize("preset", ["lung", "bone", "brain"])
def test_presets_window_in_hounsfield_units(tmp_path: Path, preset: str) -> None:
    out = decode_pixels(read_dicom(hu_ramp(tmp_path)), window=preset)
    hu = np.linspace(-1000, 1000, 21)
    center, width = WINDOW_PRESETS[preset]
    expected = np.clip((hu - (center - width / 2)) / width, 0, 1)
    np.testing.assert_allclose(out[0], expected, atol=1e-6)


def test_presets_differ_from_header_window(tmp_path: Path) -> None:
    ds = read_dicom(hu_ramp(tmp_path))
    assert not np.allclose(decode_pixels(ds, "lung"), decode_pixels(ds, "header"))
    assert decode_pixels(ds, "brain")[0, 10] == pytest.approx(0.0)  # 0 HU is below the brain window (0..80)


def rgb_file() -> Path:
    from pydicom.data import get_testdata_file

    return Path(get_testdata_file("SC_rgb.dcm"))


def test_rgb_to_three_channels_and_to_luma(tmp_path: Path) -> None:
    ds = read_dicom(rgb_file())
    rgb = decode_channels(ds, channels=3)
    gray = decode_channels(ds, channels=1, window="minmax")
    assert rgb.shape == (3, 100, 100) and gray.shape == (1, 100, 100)
    assert rgb.dtype == np.float32 and 0 <= rgb.min() and rgb.max() <= 1
    assert not np.allclose(rgb[0], rgb[1])  # real colour survives, channel by channel
    assert rgb[0, 5, 5] == pytest.approx(1.0) and rgb[1, 5, 5] == pytest.approx(0.0)  # top band: pure red


def test_grayscale_repeats_into_three_channels(tmp_path: Path) -> None:
    ds = read_dicom(hu_ramp(tmp_path))
    three = decode_channels(ds, channels=3)
    np.testing.assert_array_equal(three[0], three[2])
    np.testing.assert_array_equal(three[1], decode_pixels(ds))


def test_frame_index_picks_that_frame(tmp_path: Path) -> None:
    frames = np.stack([np.full((8, 8), v, np.uint8) for v in (10, 200, 30)])
    path = tmp_path / "mf.dcm"
    write_dicom(path, frames.reshape(24, 8), "P1", "Acme",
                extra={"Rows": 8, "NumberOfFrames": 3, "WindowCenter": 128, "WindowWidth": 256})
    ds = read_dicom(path)
    values = [decode_pixels(ds, frame=k)[0, 0] for k in (0, 1, 2)]
    assert values == pytest.approx([10 / 255, 200 / 255, 30 / 255], abs=0.01)
    assert decode_pixels(ds)[0, 0] == values[1]  # None = the middle frame
    with pytest.raises(ValueError, match="out of range"):
        decode_pixels(ds, frame=3)


def test_header_fields_record_window_and_codec(tmp_path: Path) -> None:
    fields = header_fields(read_dicom(hu_ramp(tmp_path)))
    assert fields["has_window"] is True and fields["transfer_syntax"] == "Explicit VR Little Endian"
    write_dicom(tmp_path / "nowin.dcm", np.zeros((4, 4), np.uint16), "P1", "Acme")
    assert header_fields(read_dicom(tmp_path / "nowin.dcm"))["has_window"] is False
