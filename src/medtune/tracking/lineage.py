"""Where a result came from: git commit, DVC data hashes, params hash. Tagged on runs and versions."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from medtune import paths
from medtune.config import Params
from medtune.task import Task

# Files `dvc repro` itself rewrites: their changes are pipeline outputs, not an unrecorded code edit.
_NOT_DIRTY = (":(exclude)dvc.lock", ":(exclude,glob)**/.gitignore", ":(exclude,glob)**/*.dvc")


def git_commit(repo: Path = Path(".")) -> str:
    """HEAD's sha, `-dirty` when tracked code or params changed; `unknown` outside a git repo."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                *_NOT_DIRTY], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("-dirty" if dirty else "")


def _lock_entries(stage: str, lock: Path) -> list[dict[str, Any]]:
    if not lock.is_file():
        return []
    stages = (yaml.safe_load(lock.read_text()) or {}).get("stages", {})
    entry = stages.get(stage, {})
    return list(entry.get("deps", [])) + list(entry.get("outs", []))


def dvc_dep_hash(stage: str, path: str, lock: Path = Path("dvc.lock")) -> str:
    """The md5 DVC recorded for one dependency or output of a stage (e.g. ingest's data/raw); `unknown` if absent.

    `dvc repro` rewrites dvc.lock after each stage succeeds, so while a downstream stage runs the upstream
    entries are already current (checked by `lock_is_current` and by the pipeline integration test).
    """
    for entry in _lock_entries(stage, lock):
        if entry.get("path") == path:
            return str(entry.get("md5", "unknown"))
    return "unknown"


def file_md5(path: Path) -> str:
    """md5 of a file's bytes: what DVC 3 records for a file output."""
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lock_is_current(stage: str, out: str, lock: Path = Path("dvc.lock")) -> bool:
    """True when dvc.lock's md5 for a stage's file output matches the file on disk (the entry is not stale)."""
    recorded = dvc_dep_hash(stage, out, lock)
    path = lock.parent / out
    return recorded != "unknown" and path.is_file() and file_md5(path) == recorded


def params_hash(values: dict[str, Any]) -> str:
    """Short content hash of a params mapping, stable under key order."""
    blob = json.dumps(values, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def sweep_folder(storage: str | Path, tags: dict[str, str]) -> Path:
    """One sweep folder per (params, data, split) under `storage`: re-running an interrupted tune stage on
    the same inputs resumes it. The git commit is left out, so committing code does not restart a sweep."""
    inputs = {k: v for k, v in tags.items() if k != "medtune.git_commit"}
    return Path(storage) / f"sweep-{params_hash(inputs)}"


# The tags that say two runs saw the same images, labels and split (a warm start's condition).
DATA_KEYS = ("medtune.data_hash", "medtune.labels_hash", "medtune.split_hash")


def lineage_tags(split_hash: str, params: dict[str, Any], lock: Path = Path("dvc.lock")) -> dict[str, str]:
    """The tags every run and model version carries, so a number can be traced to its inputs.

    The data hash is dvc.lock's md5 of ingest's data/raw, trusted only while ingest's entry still matches
    the manifest on disk; a stale or missing entry (a stage run by hand, outside `dvc repro`) says `unknown`.
    """
    current = lock_is_current("ingest", str(paths.MANIFEST), lock)
    tags = {
        "medtune.git_commit": git_commit(lock.parent if lock.parent != Path("") else Path(".")),
        "medtune.data_hash": dvc_dep_hash("ingest", "data/raw", lock) if current else "unknown",
        "medtune.labels_hash": dvc_dep_hash("ingest", "data/labels.csv", lock) if current else "unknown",
        "medtune.split_hash": split_hash,
        "medtune.params_hash": params_hash(params),
    }
    if not current:
        tags["medtune.lineage_note"] = ("dvc.lock's ingest entry is missing or stale (stage run outside "
                                        "`dvc repro`?): data hash unknown")
    return tags


def version_tags(params: Params, best: dict, shash: str, task: Task, inference: dict[str, Any],
                 val_metrics: dict) -> dict[str, str]:
    """Lineage of one model version: code, data, split, params, sweep, trial, the task (and, binary, its
    positive class), what was chosen on validation (threshold and its rule, calibration, tta) and
    validation numbers."""
    upstream = {k: dataclasses.asdict(getattr(params, k)) for k in ("ingest", "preprocess", "split", "search")}
    upstream |= {"train": best["train"], "seed": params.base.seed}
    splits_current = lock_is_current("split", str(paths.SPLITS))
    return {**lineage_tags(shash, upstream),
            "medtune.splits_md5": dvc_dep_hash("split", str(paths.SPLITS)) if splits_current else "unknown",
            "medtune.sweep_run_id": best["sweep_run_id"], "medtune.trial_id": best["trial_id"],
            "medtune.trial_params": json.dumps(best.get("config", {}), sort_keys=True, default=str)[:4000],
            "medtune.threshold": json.dumps(inference["threshold"]), "medtune.task": task.kind,
            "medtune.threshold_rule": params.registry.threshold if inference["threshold"] is not None else "none",
            "medtune.calibration": json.dumps(inference["calibration"]), "medtune.tta": str(inference["tta"]).lower(),
            **({"medtune.positive_label": task.names[1]} if task.kind == "binary" else {}),
            **{f"medtune.val_{k}": f"{v:.6f}" for k, v in val_metrics.items() if isinstance(v, float)}}
