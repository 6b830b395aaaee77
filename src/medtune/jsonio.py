"""Stage outputs on disk: JSON reports with stable key order, and all-or-nothing writes of every file.

Every file a stage writes (JSON, parquet, CSV, PNG, .npy) goes through `atomic_path`: the writer fills a
sibling temp file, which is fsynced and renamed over the target, so a killed stage leaves the old file
or the new one, never half of one that a later stage would read as complete.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
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


def temp_path(path: Path) -> Path:
    """The sibling temp file a writer fills before it is renamed to `path` (the suffix is kept for writers
    that infer the format from it, such as matplotlib)."""
    path = Path(path)
    return path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temp path to write `path` through; on success fsync it and rename it over `path`.

    On an exception the temp file is removed and `path` is untouched. Temp files left by a killed
    writer (its pid is gone) are removed first, so they never pile up inside a DVC-tracked folder.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(path)
    tmp = temp_path(path)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> Path:
    """Replace `path` with `text` in one step (temp file, fsync, rename)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_table(frame: Any, path: Path) -> Path:
    """Write a pandas DataFrame as .parquet or .csv (by suffix, no index column), all or nothing."""
    path = Path(path)
    with atomic_path(path) as tmp:
        if path.suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif path.suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            raise ValueError(f"{path}: write_table writes .parquet or .csv")
    return path


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable: a crash right after must not bring back the old directory entry."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_temps(path: Path) -> None:
    """Delete temp files of `path` whose writing process no longer exists."""
    for stale in path.parent.glob(f".{path.stem}.*.tmp{path.suffix}"):
        pid = stale.name[len(path.stem) + 2:].split(".", 1)[0]
        if pid.isdigit() and not _writing(int(pid), stale):
            stale.unlink(missing_ok=True)


def _writing(pid: int, temp: Path) -> bool:
    """Whether process `pid` may still be writing `temp`.

    A killed writer can linger as a zombie (an orphan under a PID 1 that never reaps, as in containers),
    and its pid can be reused; neither is writing. Linux's /proc tells both: state Z, or a process that
    started after the temp file was last written.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (not Linux): fall back to "the pid exists"
        return _pid_exists(pid)
    fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state is first, starttime 20th
    if fields[0] == "Z":
        return False
    boot = _boot_time()
    started = boot + int(fields[19]) / os.sysconf("SC_CLK_TCK") if boot is not None else None
    try:
        return started is None or started <= temp.stat().st_mtime + 1.0
    except FileNotFoundError:
        return False


def _boot_time() -> float | None:
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("btime "):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


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
