"""`dvc repro` re-runs exactly the stages whose code changed.

tests/unit/test_dvc_deps.py proves each stage lists its import closure; this runs DVC itself on a copy of
the shared finished project, with a real copy of src/ (the fixture's src/ is a link to this checkout,
which the test must not touch), and edits one module at a time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.integration._proc import run
from tests.integration._project import Finished

pytestmark = [pytest.mark.slow]


def changed_stages(project: Path) -> set[str]:
    """Stages `dvc status` reports as changed (its JSON: stage -> what changed)."""
    return set(json.loads(run(["dvc", "status", "--json"], project).stdout or "{}"))


def touch(project: Path, module: str) -> None:
    """Append a comment: the module's behaviour is unchanged, its bytes (and md5) are not."""
    with open(project / "src/medtune" / module, "a") as handle:
        handle.write("# touched by test_repro_status\n")


def test_dvc_status_names_the_stages_whose_code_changed(finished: Finished, tmp_path: Path) -> None:
    copy = tmp_path / "proj"
    shutil.copytree(finished.path, copy, symlinks=True,
                    ignore=shutil.ignore_patterns("ray_results", "mlartifacts", "mlruns.db", "dvc_plots"))
    (copy / "src").unlink()
    shutil.copytree(finished.path / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    assert changed_stages(copy) == set()  # the copy is up to date, as the original is

    touch(copy, "pipeline/split.py")
    assert changed_stages(copy) == {"split"}
    # Re-running it rewrites the same splits.json, so nothing downstream runs again.
    out = run(["dvc", "repro"], copy).stdout
    assert "Running stage 'split'" in out
    assert not [s for s in ("ingest", "preprocess", "tune", "promote", "test") if f"Running stage '{s}'" in out]
    assert changed_stages(copy) == set()

    touch(copy, "data/datamodule.py")  # loads images for training and scoring, not for decoding or splitting
    assert changed_stages(copy) == {"tune", "promote", "test"}
    touch(copy, "data/pixels.py")      # the decode chain: ingest reads headers with it, preprocess decodes
    assert changed_stages(copy) == {"ingest", "preprocess", "tune", "promote", "test"}
