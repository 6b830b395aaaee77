"""JSON reports: stable key order and a trailing newline, so DVC and git diffs stay readable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from medtune.errors import DataError


def _default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (Path, set)):
        return str(value) if isinstance(value, Path) else sorted(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_json(path: Path, obj: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True, default=_default) + "\n")
    return path


def read_json(path: Path, what: str) -> Any:
    """Read a JSON file a previous stage wrote; a missing or broken file is one clear line."""
    if not path.is_file():
        raise DataError(f"{path}: not found; run the stage that writes the {what} first (dvc repro)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
