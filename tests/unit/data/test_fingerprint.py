"""The fingerprint's summaries and the `auto` settings the preprocess stage takes from it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medtune.config import load_params
from medtune.data.ingest import ingest
from medtune.data.preprocess import resolve_settings
from medtune.data.sample import write_dicom
from medtune.errors import ConfigError

ROOT = Path(__file__).resolve().parents[3]


def test_fingerprint_summarises_the_cohort(tiny_cohort: tuple[Path, Path], hmac_key: bytes) -> None:
    raw, labels = tiny_cohort
    write_dicom(raw / "p000/big.dcm", np.zeros((64, 96), np.uint16), "SYN000000", "Acme",
                extra={"PixelSpacing": [0.2, 0.3]})
    with open(labels, "a") as handle:
        handle.write("p000/big.dcm,normal\n")
    fp = ingest(raw, str(labels), hmac_key).fingerprint
    assert fp["sizes"] == {"16x16": 20, "64x96": 1} and fp["median_size"] == [16.0, 16.0]
    assert fp["spacings"] == {"unknown": 20, "0.2\\0.3": 1} and fp["median_spacing_mm"] == [0.2, 0.3]
    assert fp["fraction_with_header_window"] == pytest.approx(20 / 21)
    assert fp["task"]["per_class"] == {"normal": 11, "abnormal": 10} and fp["task"]["positive_label"] == "abnormal"
    assert (fp["recommended"]["image_size"], fp["recommended"]["window"]) == (32, "header")
    assert fp["recommended"]["why"]["window"] == "CR: most files carry a window (VOI LUT or center/width)"
    assert fp["transfer_syntaxes"] == {"Explicit VR Little Endian": 21}
    json.dumps(fp)


def test_auto_settings_resolve_from_the_fingerprint() -> None:
    def resolve(params, fingerprint):
        return resolve_settings(params.preprocess, params.train, params.search.space, fingerprint)

    params = load_params(ROOT / "params.yaml", {"preprocess.image_size": "auto", "preprocess.window": "auto"})
    fp = {"recommended": {"image_size": 128, "window": "percentile"}}
    assert resolve(params, fp) == {"image_size": 128, "window": "percentile", "percentiles": [0.5, 99.5],
                                   "channels": 1, "frames": "middle", "resize": "pad", "bits": 8}
    fixed = load_params(ROOT / "params.yaml", {"preprocess.image_size": 64, "preprocess.window": "lung"})
    assert resolve(fixed, fp)["image_size"] == 64 and resolve(fixed, fp)["window"] == "lung"
    with pytest.raises(ConfigError, match="run ingest"):
        resolve(params, {})
    with pytest.raises(ConfigError, match="too small for the networks searched"):
        resolve(params, {"recommended": {"image_size": 4, "window": "header"}})
