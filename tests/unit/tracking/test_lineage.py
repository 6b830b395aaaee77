"""Lineage against a real DVC pipeline and a real git repo: what `dvc repro` records is what gets tagged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from medtune.tracking.lineage import dvc_dep_hash, git_commit, lineage_tags, lock_is_current, sweep_folder

# Stage two reads ingest's data hash while `dvc repro` is still running, as the promote stage does.
DVC_YAML = {"stages": {
    "ingest": {"cmd": "cp data/labels.csv data/interim/manifest.parquet",
               "deps": ["data/raw", "data/labels.csv"], "outs": ["data/interim/manifest.parquet"]},
    "promote": {"cmd": f"{sys.executable} -c \"from medtune.tracking.lineage import lineage_tags; "
                       "open('seen.txt', 'w').write(lineage_tags('s', {})['medtune.data_hash'])\"",
                "deps": ["data/interim/manifest.parquet"], "outs": [{"seen.txt": {"cache": False}}]},
}}


def sh(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout


def test_data_hash_is_dvc_locks_and_current_while_repro_runs(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "data/raw").mkdir(parents=True)
    (tmp_path / "data/interim").mkdir()
    (tmp_path / "data/raw/a.dcm").write_bytes(b"not really dicom")
    (tmp_path / "data/labels.csv").write_text("path,label\na.dcm,x\n")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(DVC_YAML))
    sh(["dvc", "init", "--no-scm", "-q"], tmp_path)
    sh(["dvc", "repro", "-q"], tmp_path)
    monkeypatch.chdir(tmp_path)

    recorded = dvc_dep_hash("ingest", "data/raw")
    assert recorded.endswith(".dir")
    assert (tmp_path / "seen.txt").read_text() == recorded  # ingest's lock entry existed mid-repro
    tags = lineage_tags("s", {"a": 1})
    assert tags["medtune.data_hash"] == recorded and tags["medtune.labels_hash"] != "unknown"
    assert "medtune.lineage_note" not in tags

    # Re-running ingest by hand leaves dvc.lock stale: the hash is no longer claimed.
    (tmp_path / "data/interim/manifest.parquet").write_text("changed\n")
    assert not lock_is_current("ingest", "data/interim/manifest.parquet")
    stale = lineage_tags("s", {"a": 1})
    assert stale["medtune.data_hash"] == "unknown" and "stale" in stale["medtune.lineage_note"]


def test_git_commit_ignores_files_dvc_rewrites_but_not_params(tmp_path: Path) -> None:
    assert git_commit(tmp_path) == "unknown"
    sh(["git", "init", "-q"], tmp_path)
    for name in ("dvc.lock", "params.yaml", ".gitignore"):
        (tmp_path / name).write_text("v1\n")
    sh(["git", "add", "-A"], tmp_path)
    sh(["git", "commit", "-qm", "init"], tmp_path)
    sha = sh(["git", "rev-parse", "HEAD"], tmp_path).strip()
    assert git_commit(tmp_path) == sha
    (tmp_path / "dvc.lock").write_text("v2\n")
    (tmp_path / ".gitignore").write_text("v2\n")
    assert git_commit(tmp_path) == sha
    (tmp_path / "params.yaml").write_text("v2\n")
    assert git_commit(tmp_path) == f"{sha}-dirty"


def test_sweep_folder_follows_the_inputs_not_the_commit(tmp_path: Path) -> None:
    tags = {"medtune.git_commit": "abc", "medtune.split_hash": "s1", "medtune.params_hash": "p1"}
    folder = sweep_folder(tmp_path, tags)
    assert folder.parent == tmp_path and folder.name.startswith("sweep-")
    assert sweep_folder(tmp_path, {**tags, "medtune.git_commit": "def-dirty"}) == folder  # same sweep: resume
    assert sweep_folder(tmp_path, {**tags, "medtune.split_hash": "s2"}) != folder
