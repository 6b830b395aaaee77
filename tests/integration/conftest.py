"""Integration fixtures: a scratch project (git + DVC) with the REAL dvc.yaml and params.yaml, shrunk
for speed the way lightning-hydra-template shrinks its real config."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from tests.integration._proc import run

ROOT = Path(__file__).resolve().parents[2]

# Speed overrides on top of the real params.yaml: 2 trials of 1 epoch on 16 px images.
TINY = {
    "preprocess": {"image_size": 16},
    "ingest": {"workers": 1},
    "train": {"batch_size": 16, "epochs": 1, "width": 8, "depth": 2, "augment": 0.0},
    "search": {"num_samples": 2, "max_concurrent_trials": 2, "grace_period": 1,
               "space": {"lr": {"low": 0.001, "high": 0.01, "log": True},
                         "optimizer": {"choices": ["adam", "sgd_momentum"]},
                         "dropout": {"low": 0.0, "high": 0.3}}},
    "test": {"bootstrap": 50},
}


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if key == "space":
            out[key] = value
        elif isinstance(value, dict):
            out[key] = merge(base.get(key, {}), value)
        else:
            out[key] = value
    return out


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A git + DVC project holding the real dvc.yaml and the tiny params, with a synthetic cohort."""
    from medtune.data.sample import write_synthetic

    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copy(ROOT / "dvc.yaml", proj / "dvc.yaml")
    # dvc.yaml names source files as deps; point them at this checkout's real files.
    (proj / "src").symlink_to(ROOT / "src")
    (proj / "models/pretrained").mkdir(parents=True)  # a dependency of the tune stage
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY)
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_synthetic(proj / "data/raw", proj / "data/labels.csv", n_patients=24, images_per_patient=2,
                    image_size=16, seed=3)
    run(["git", "init", "-q"], proj)
    run(["dvc", "init", "-q"], proj)
    return proj
