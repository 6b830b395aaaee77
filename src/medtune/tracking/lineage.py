"""Where a result came from: git commit, DVC data hashes, params hash. Tagged on runs and versions."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml


def git_commit(repo: Path = Path(".")) -> str:
    """HEAD's sha with a `-dirty` suffix when tracked files changed; `unknown` outside a git repo."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def dvc_dep_hash(stage: str, path: str, lock: Path = Path("dvc.lock")) -> str:
    """The md5 DVC recorded for one dependency of a stage (e.g. ingest's data/raw); `unknown` if absent.

    dvc.lock is written after a stage succeeds, so during `dvc repro` the upstream stages' entries
    are already current when a downstream stage reads them.
    """
    if not lock.is_file():
        return "unknown"
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    for entry in stages.get(stage, {}).get("deps", []) + stages.get(stage, {}).get("outs", []):
        if entry.get("path") == path:
            return str(entry.get("md5", "unknown"))
    return "unknown"


def params_hash(values: dict[str, Any]) -> str:
    """Short content hash of a params mapping, stable under key order."""
    blob = json.dumps(values, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def lineage_tags(split_hash: str, params: dict[str, Any], lock: Path = Path("dvc.lock")) -> dict[str, str]:
    """The tags every run and model version carries, so a number can be traced to its inputs."""
    return {
        "medtune.git_commit": git_commit(lock.parent if lock.parent != Path("") else Path(".")),
        "medtune.data_hash": dvc_dep_hash("ingest", "data/raw", lock),
        "medtune.split_hash": split_hash,
        "medtune.params_hash": params_hash(params),
    }
