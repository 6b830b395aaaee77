"""JSON reports: stable key order, a trailing newline, and all-or-nothing writes.

Every JSON file the pipeline writes goes through `write_json`: it writes a sibling temp file, fsyncs
it and renames it over the target, so a killed stage leaves the old file or the new one, never half
of one that a later stage would read as complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from medtune.errors import DataError


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set):
        return sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_atomic(path: Path, text: str) -> Path:
    """Replace `path` with `text` in one step (temp file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def write_json(path: Path, obj: Any, sort_keys: bool = True) -> Path:
    """Write `obj` as indented JSON, atomically; `sort_keys=False` keeps a hand-editable file's order."""
    return write_atomic(path, json.dumps(obj, indent=1, sort_keys=sort_keys, default=_default) + "\n")


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file a previous stage wrote; a missing or broken file is one clear line."""
    if not path.is_file():
        raise DataError(f"{path}: not found; run the stage that writes the {what} first (dvc repro)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
