"""Every file shipped with pydicom (and pydicom-data) ends accepted or rejected: never a crash.

The corpus holds the awkward cases: no preamble, truncated pixel data, bad VR, RT/SR objects,
JPEG/JPEG 2000/RLE/JPEG-LS, big endian, multi-frame. Only files installed with the packages are used.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from pydicom.data import get_testdata_files

from medtune.data.dicom import READ_REJECT_REASONS
from medtune.data.ingest import read_one


def test_every_corpus_file_is_accepted_or_rejected(hmac_key: bytes) -> None:
    files = sorted({Path(f) for f in get_testdata_files() if Path(f).is_file()})
    assert len(files) > 100  # the bundled corpus is present
    outcomes: Counter[str] = Counter()
    for path in files:
        result = read_one(path, path.name, hmac_key, sample_intensity=True)
        if result.reason is None:
            assert result.header["rows"] > 0 and len(result.pixel_sha1) == 40, path.name
            assert result.intensities is not None and np.isfinite(result.intensities).all(), path.name
            outcomes["accepted"] += 1
        else:
            assert result.reason in READ_REJECT_REASONS, (path.name, result.reason)
            outcomes[result.reason] += 1
    assert outcomes["accepted"] > 100
    # Known inhabitants of the corpus, one per reason we can name for certain.
    expected = {
        "MR_truncated.dcm": "truncated_pixel_data", "rtstruct.dcm": "non_image_object",
        "README.txt": "not_dicom", "meta_missing_tsyntax.dcm": "unsupported_transfer_syntax",
    }
    for name, reason in expected.items():
        path = next(p for p in files if p.name == name)
        assert read_one(path, name, hmac_key).reason == reason, name
    assert {"no_pixel_data", "decode_error"} <= set(outcomes)
