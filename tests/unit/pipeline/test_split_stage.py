"""The split stage as two clones run it: same data, seed and params, different HMAC keys, same split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from medtune.config import load_params
from medtune.data.sample import write_synthetic
from medtune.pipeline import ingest, preprocess, split

ROOT = Path(__file__).resolve().parents[3]


def write_cohort(raw: Path, labels: Path) -> None:
    """30 patients of 1, 2 or 3 images (some files dropped from a 3-per-patient synthetic cohort)."""
    write_synthetic(raw, labels, n_patients=30, images_per_patient=3, image_size=16, seed=4)
    for patient in range(30):
        for image in range(3 - patient % 3, 3):
            (raw / f"p{patient:03d}/img{image}.dcm").unlink()
    rows = [r for r in csv.reader(labels.open()) if r[0] == "path" or (raw / r[0]).is_file()]
    with labels.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def run_clone(root: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, list[str]], set[str], dict]:
    """ingest -> preprocess -> split in `root`, which generates its own .medtune/hmac.key."""
    write_cohort(root / "data/raw", root / "data/labels.csv")
    monkeypatch.chdir(root)
    params = load_params(ROOT / "params.yaml", {"preprocess.image_size": 16, "ingest.workers": 1,
                                                "split.method": "grouped"})
    for stage in (ingest, preprocess, split):
        stage.run(params)
    manifest = pd.read_parquet("data/interim/manifest.parquet")
    path_of = dict(zip(manifest["sample_id"], manifest["path"]))
    splits = json.loads(Path("data/splits/splits.json").read_text())
    by_path = {s: [path_of[sid] for sid in splits[s]] for s in ("train", "val", "test")}
    summary = json.loads(Path("reports/split/summary.json").read_text())
    return by_path, set(manifest["patient_key"]), summary


def test_two_clones_with_different_hmac_keys_split_alike(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("MEDTUNE_HMAC_KEY", raising=False)
    first, first_keys, summary = run_clone(tmp_path / "clone_a", monkeypatch)
    second, second_keys, _ = run_clone(tmp_path / "clone_b", monkeypatch)
    keys = [(tmp_path / c / ".medtune/hmac.key").read_text() for c in ("clone_a", "clone_b")]
    assert keys[0] != keys[1] and not first_keys & second_keys  # each clone hashed patients its own way
    assert first == second  # ... and dealt the same files to the same splits, listed in the same order
    assert all(paths == sorted(paths) for paths in first.values())  # the manifest's path order
    assert all(first[s] for s in first) and sum(map(len, first.values())) == 60
    # 30 patients: val and test hold a handful each, and the stage says so in its report and console.
    assert summary["patients"]["val"] < 30 and "rest on very few patients" in summary["warnings"][0]
    assert "split: WARNING: val has" in capsys.readouterr().out
