"""ingest.hash_paths: an archive whose folder and file names carry patient names and MRNs runs the whole
pipeline (`dvc repro`, ingest -> test), the labels join included, and no planted name component reaches
any output, log, the MLflow store or any file name.

Out of scope, on purpose: DVC's own cache and state (.dvc/) list the raw files by name, as DVC stores the
raw files themselves; with PHI in folder names that cache is as sensitive as data/raw.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from tests.integration._proc import run

pytestmark = [pytest.mark.slow, pytest.mark.ray]

NAME, MRN = "QXDOEQX", "QX8817MRNQX"  # unique markers: one search finds them all


def rename_with_phi(project: Path) -> list[str]:
    """Move every raw file to '<NAME>^JANE_<MRN><patient>/<MRN>_<n>.dcm' and relabel; returns the markers."""
    raw, labels = project / "data/raw", project / "data/labels.csv"
    table = pd.read_csv(labels, dtype=str)
    moved = project / "data/raw_phi"
    markers = {NAME, MRN}
    for n, row in table.iterrows():
        patient = Path(row["path"]).parent.name
        new = f"{NAME}^JANE_{MRN}{patient}/{MRN}_{n:03d}.dcm"
        (moved / new).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(raw / row["path"], moved / new)
        table.at[n, "path"] = new
        markers.add(f"{MRN}{patient}")
    (moved / f"{NAME}_notes").mkdir()
    (moved / f"{NAME}_notes" / f"{MRN}_readme.txt").write_text("not an image\n")  # a rejected file
    shutil.rmtree(raw)
    moved.rename(raw)
    table.to_csv(labels, index=False)
    return sorted(markers)


def test_no_path_component_reaches_any_output(project: Path) -> None:
    markers = rename_with_phi(project)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["ingest"]["hash_paths"] = True
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    proc = run(["dvc", "repro"], project)

    fingerprint = json.loads((project / "reports/ingest/fingerprint.json").read_text())
    assert fingerprint["n_accepted"] == 48 and fingerprint["rejected_by_reason"] == {"not_dicom": 1}
    assert (project / "reports/test/metrics.json").is_file()  # the whole pipeline ran
    manifest = pd.read_parquet(project / "data/interim/manifest.parquet")
    assert all(re.fullmatch("[0-9a-f]{16}", p) for p in manifest["path"])
    assert manifest["label"].nunique() == 2  # the labels join worked on the real paths

    haystacks = {"dvc repro stdout": proc.stdout.encode(), "dvc repro stderr": proc.stderr.encode()}
    inputs = {project / "data/raw", project / "data/labels.csv", project / "src", project / ".dvc"}
    for path in sorted(project.rglob("*")):
        if any(p in inputs for p in (path, *path.parents)):
            continue
        haystacks[f"file name {path}"] = path.name.encode()
        if path.is_file() and not path.is_symlink():
            haystacks[str(path.relative_to(project))] = path.read_bytes()
    assert any(name.startswith("mlruns.db") for name in haystacks)
    assert any(name.startswith("reports/ingest/rejected.csv") for name in haystacks)
    planted = "\n".join(p.relative_to(project).as_posix() for p in (project / "data/raw").rglob("*")).encode()
    assert all(m.encode() in planted for m in markers)  # the search would find them: it can fail
    leaks = [(m, where) for m in markers for where, data in haystacks.items()
             if m.encode() in data or m.encode("utf-16-le") in data]
    assert not leaks, f"path components found: {leaks[:10]}"
