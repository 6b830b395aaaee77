"""What `auto` will use and why: a window per modality (CT presets from the body part), a size the
machine can train, and which header window `header` applies when files carry several."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medtune.data.fingerprint import summary_lines
from medtune.data.ingest import ingest
from medtune.data.recommend import header_windows, recommend_image_size, recommend_window, sweep_seconds
from medtune.data.sample import write_dicom

TWO_CPUS = {"cpus": 2, "gpus": 0}


def manifest(n: int, modality: str = "CT", body_part: str = "", side: int = 512, windows: list | None = None,
             ) -> pd.DataFrame:
    """n files of one modality; `windows` cycles (count, center, width) over them (None: no window)."""
    cycle = windows or [(0, np.nan, np.nan)]
    rows = [{"modality": modality, "body_part": body_part, "rows": side, "columns": side,
             "has_window": cycle[i % len(cycle)][0] > 0, "window_count": cycle[i % len(cycle)][0],
             "window_center": cycle[i % len(cycle)][1], "window_width": cycle[i % len(cycle)][2]}
            for i in range(n)]
    return pd.DataFrame(rows)


@pytest.mark.parametrize(("part", "preset"), [("CHEST", "lung"), ("head", "brain"), ("ABDOMEN", "soft_tissue"),
                                              ("LIVER", "liver"), ("KNEE", "bone")])
def test_ct_window_follows_the_body_part(part: str, preset: str) -> None:
    m = manifest(10, body_part=part, windows=[(2, 40.0, 400.0)])
    window, why = recommend_window(m, header_windows(m))
    assert window == preset and f"BodyPartExamined {part.upper()}" in why and "pick another" in why


def test_untagged_ct_says_so_and_avoids_disagreeing_header_windows() -> None:
    # 20 different first windows across files (the cohort): `header` would window each differently.
    m = manifest(40, windows=[(3, 40.0 + i, 400.0) for i in range(20)])
    window, why = recommend_window(m, header_windows(m))
    assert window == "soft_tissue"
    assert "BodyPartExamined is not tagged" in why and "header windows differ between files (20" in why
    agreeing = manifest(10, windows=[(2, 40.0, 400.0)])
    assert recommend_window(agreeing, header_windows(agreeing))[0] == "header"
    bare = manifest(10)
    assert recommend_window(bare, header_windows(bare))[0] == "soft_tissue"


def test_mr_and_radiographs_get_no_ct_preset() -> None:
    mr = manifest(6, modality="MR", windows=[(1, 300.0, 600.0)])
    window, why = recommend_window(mr, header_windows(mr))
    assert window == "header" and "MR intensities have no absolute scale" in why
    cr = manifest(6, modality="CR")
    assert recommend_window(cr, header_windows(cr)) == ("percentile", "CR: most files carry no window: "
                                                        "percentile clipping per image")


def test_header_windows_say_which_one_is_used() -> None:
    m = manifest(10, windows=[(2, 40.0, 400.0), (2, 40.0, 400.0), (1, -600.0, 1500.0), (0, np.nan, np.nan)])
    hw = header_windows(m)
    assert hw["files_with_window"] == 8 and hw["files_with_several"] == 6 and hw["distinct_first_windows"] == 2
    assert hw["first_windows"] == {"40/400": 6, "-600/1500": 2}
    assert "first WindowCenter/WindowWidth pair" in hw["header_uses"]


def test_image_size_is_weighed_against_the_machine() -> None:
    small_ct = manifest(100)  # 512 px slices: 256 px from the images
    size, why = recommend_image_size(small_ct, TWO_CPUS)
    assert sweep_seconds(100, 256, 2) > 300 >= sweep_seconds(100, 128, 2)
    assert size == 128 and why.startswith("images' median shorter side 512 px -> 256 px; on this machine (2 CPU "
                                          "cores, no GPU) a first sweep (32 epochs of 100 images) would take ~9 min "
                                          "at 256 px and ~2 min at 128 px")
    assert recommend_image_size(small_ct, {"cpus": 2, "gpus": 1})[0] == 256  # a GPU: the images' size
    assert recommend_image_size(small_ct, {"cpus": 64, "gpus": 0})[0] == 256  # many cores: fits the budget
    assert recommend_image_size(manifest(20_000), TWO_CPUS)[0] == 64  # never below 64 px for compute
    assert recommend_image_size(manifest(20_000, side=28), TWO_CPUS)[0] == 32  # the images' own size


def test_ingest_records_several_windows_and_prints_the_recommendations(tmp_path: Path, hmac_key: bytes) -> None:
    raw, rows = tmp_path / "raw", []
    for n in range(6):
        extra = {"WindowCenter": [40, -600], "WindowWidth": [400, 1500], "BodyPartExamined": "CHEST",
                 "RescaleIntercept": -1024, "RescaleSlope": 1}
        write_dicom(raw / f"p{n}.dcm", np.full((32, 32), 1000 + n, np.uint16), f"P{n}", "Acme", modality="CT",
                    extra=extra)
        rows.append(f"p{n}.dcm,{'normal' if n % 2 else 'nodule'}\n")
    (tmp_path / "labels.csv").write_text("path,label\n" + "".join(rows))
    fp = ingest(raw, str(tmp_path / "labels.csv"), hmac_key).fingerprint
    assert fp["header_windows"]["files_with_several"] == 6 and fp["header_windows"]["first_windows"] == {"40/400": 6}
    assert fp["recommended"]["window"] == "lung" and fp["compute"]["cpus"] >= 1
    lines = summary_lines(fp, "header", 28, positive_set=False)
    assert lines[0].startswith("6 images of 6 patients; task binary: classes ")
    assert "positive class (target 1): 'nodule' (inferred from the label names" in lines[0]
    assert lines[1].startswith("window: params header, recommended lung (CT, BodyPartExamined CHEST")
    assert lines[2].startswith("header windows: 6 of 6 files carry several; window=header uses each file's first")
    assert "40/400 in 6" in lines[2] and lines[3].startswith("image_size: params 28, recommended 32 (")
