"""Scratch projects for integration tests: a git + DVC project holding the REAL dvc.yaml and params.yaml,
shrunk for speed the way lightning-hydra-template shrinks its real config, and one taken through `dvc repro`."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml
from tests.integration._phi import plant_markers
from tests.integration._proc import run

ROOT = Path(__file__).resolve().parents[2]

# Speed overrides on top of the real params.yaml: 2 trials of 1 epoch on 16 px images.
TINY = {
    "preprocess": {"image_size": 16},
    "ingest": {"workers": 1},
    "train": {"batch_size": 16, "epochs": 1, "width": 8, "depth": 2, "augment": 0.0},
    "search": {"num_samples": 2, "max_concurrent_trials": 2, "cpus_per_trial": 1,
               "space": {"lr": {"low": 0.001, "high": 0.01, "log": True},
                         "optimizer": {"choices": ["adam", "sgd_momentum"]},
                         "dropout": {"low": 0.0, "high": 0.3}}},
    "test": {"bootstrap": 50},
}
COHORT = {"n_patients": 24, "images_per_patient": 2, "image_size": 16, "seed": 3}
# The shared finished project: a cohort and training long enough that its champion beats chance on test by a
# margin (test_pipeline), and `split.folds: auto` (40 patients: 5 folds), so promote refits the best config
# per fold, fits calibration and threshold on out-of-fold predictions and weighs the fold ensemble.
FINISHED_COHORT = {**COHORT, "n_patients": 40}
FINISHED_PARAMS = {"train": {"epochs": 3}, "split": {"folds": "auto"}}
N_FINISHED_IMAGES = FINISHED_COHORT["n_patients"] * FINISHED_COHORT["images_per_patient"]
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


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


def make_project(root: Path, cohort: dict | None = None, extra: dict | None = None) -> Path:
    """A git + DVC project under root holding the real dvc.yaml and the tiny params (with `extra` over them),
    with a synthetic cohort (`cohort`: write_synthetic's arguments, COHORT by default)."""
    from medtune.data.sample import write_synthetic

    proj = root / "proj"
    proj.mkdir()
    shutil.copy(ROOT / "dvc.yaml", proj / "dvc.yaml")
    # dvc.yaml names source files as deps; point them at this checkout's real files.
    (proj / "src").symlink_to(ROOT / "src")
    (proj / "models/pretrained").mkdir(parents=True)  # a dependency of the tune stage
    params = merge(merge(yaml.safe_load((ROOT / "params.yaml").read_text()), TINY), extra or {})
    (proj / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    write_synthetic(proj / "data/raw", proj / "data/labels.csv", **(cohort or COHORT))
    run(["git", "init", "-q"], proj)
    run(["dvc", "init", "-q"], proj)
    return proj


def set_params(project: Path, section: str, **values: object) -> None:
    """Edit the project's params.yaml as a user would."""
    params = yaml.safe_load((project / "params.yaml").read_text())
    params[section].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@dataclass(frozen=True)
class Finished:
    """A project after one full `dvc repro`: where it is, what the run printed, what it was fed."""

    path: Path
    repro: subprocess.CompletedProcess   # the `dvc repro` that built it (stdout: every stage's output)
    markers: list[str]                   # PHI planted in the raw files (tests/integration/_phi.py)
    commit: str                          # the git commit of its inputs when it ran


def finish(root: Path) -> Finished:
    """A project taken through one full `dvc repro`. Its raw DICOM carry planted PHI, its labels are keyed by
    SOPInstanceUID (so the UID join runs too), and dvc.yaml + params.yaml are committed before the run."""
    proj = make_project(root, FINISHED_COHORT, FINISHED_PARAMS)
    markers = plant_markers(proj)
    set_params(proj, "ingest", label_key="sop_instance_uid")
    run([*GIT, "add", "dvc.yaml", "params.yaml"], proj)
    run([*GIT, "commit", "-qm", "inputs"], proj)
    commit = run(["git", "rev-parse", "HEAD"], proj).stdout.strip()
    return Finished(proj, run(["dvc", "repro"], proj), markers, commit)
