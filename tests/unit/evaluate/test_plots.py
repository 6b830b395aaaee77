"""Report plots: DVC plot CSVs and PNGs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medtune.evaluate.plots import write_plots

# 4 positives, 6 negatives; at threshold 0.5: tp=3 fn=1 fp=1 tn=5
Y_HAND = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
P_HAND = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.2, 0.1, 0.4, 0.45, 0.05])


def test_write_plots_files_and_columns(tmp_path) -> None:
    paths = write_plots(Y_HAND, P_HAND, 0.5, tmp_path / "plots")
    assert set(paths) == {
        "roc.csv",
        "confusion.csv",
        "calibration.csv",
        "roc.png",
        "confusion.png",
        "calibration.png",
    }
    for name, path in paths.items():
        assert path.exists() and path.parent == tmp_path / "plots"
        if name.endswith(".png"):
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    roc = pd.read_csv(paths["roc.csv"])
    assert list(roc.columns) == ["fpr", "tpr"]
    assert roc.iloc[0].tolist() == [0.0, 0.0] and roc.iloc[-1].tolist() == [1.0, 1.0]
    confusion = pd.read_csv(paths["confusion.csv"])
    assert list(confusion.columns) == ["actual", "predicted"] and len(confusion) == 10
    assert pd.crosstab(confusion["actual"], confusion["predicted"]).to_numpy().tolist() == [[5, 1], [1, 3]]
    calibration = pd.read_csv(paths["calibration.csv"])
    assert list(calibration.columns) == ["bin", "mean_predicted", "fraction_positive"]
    # bin 9 holds only 0.9 (positive); bin 4 holds 0.4 and 0.45 (both negative)
    rows = calibration.set_index("bin")
    assert rows.loc[9].tolist() == [pytest.approx(0.9), 1.0]
    assert rows.loc[4].tolist() == [pytest.approx(0.425), 0.0]
    assert 5 not in rows.index  # empty bins are left out
