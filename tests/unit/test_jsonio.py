"""All-or-nothing outputs: a writer SIGKILLed in the middle of a large write leaves the previous file
intact (or none), never a truncated one a later stage would read as complete; its temp file is swept
up by the next write."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medtune.jsonio import atomic_path, write_atomic, write_json, write_table

# A child that rewrites `target` (parquet, csv or npy) with a frame big enough to take a while to write.
WRITER = """
import sys
import numpy as np, pandas as pd
from medtune.jsonio import atomic_path, write_table
target = sys.argv[1]
frame = pd.DataFrame({"x": np.arange(6_000_000), "y": np.arange(6_000_000) * 0.5})
if target.endswith(".npy"):
    with atomic_path(target) as tmp:
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(6_000_000, 8))
        for i in range(0, 6_000_000, 100_000):
            arr[i:i + 100_000] = 1.0
        del arr
else:
    write_table(frame, target)
"""


def kill_mid_write(target: Path) -> None:
    """Start the writer and SIGKILL it as soon as its temp file exists (the write is under way)."""
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target)])
    deadline = time.monotonic() + 120
    while not list(target.parent.glob(f".{target.stem}.{proc.pid}.tmp*")):
        assert proc.poll() is None, "the writer finished before it could be killed: make the frame bigger"
        assert time.monotonic() < deadline
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("name", ["manifest.parquet", "rejected.csv", "images.npy"])
def test_a_writer_killed_mid_write_leaves_the_old_file_whole(tmp_path: Path, name: str) -> None:
    target = tmp_path / name
    old = pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 1.0, 1.5]})
    if name.endswith(".npy"):
        np.save(target, np.arange(3.0))
    else:
        write_table(old, target)
    before = target.read_bytes()
    kill_mid_write(target)
    assert target.read_bytes() == before  # the old version, complete
    assert list(tmp_path.glob(f".{target.stem}.*.tmp*"))  # the dead writer's partial temp is still there
    write_table(old, tmp_path / "other.csv")  # another target's write leaves it alone
    assert list(tmp_path.glob(f".{target.stem}.*.tmp*"))
    if name.endswith(".npy"):
        with atomic_path(target) as tmp:
            np.save(tmp, np.arange(4.0))
        assert np.load(target).tolist() == [0.0, 1.0, 2.0, 3.0]
    else:
        write_table(old, target)
    assert not list(tmp_path.glob(f".{target.stem}.*.tmp*")), "the next write sweeps up the dead writer's temp"


def test_a_writer_killed_before_the_first_version_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "index.parquet"
    kill_mid_write(target)
    assert not target.exists()


def test_an_exception_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    target = write_json(tmp_path / "a.json", {"v": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("{half")
        raise RuntimeError("writer failed")
    assert target.read_text() == '{\n "v": 1\n}\n' and not list(tmp_path.glob(".a.*"))
    assert write_atomic(tmp_path / "b.txt", "x").read_text() == "x"


def test_write_table_refuses_an_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=".parquet or .csv"):
        write_table(pd.DataFrame({"x": [1]}), tmp_path / "t.xlsx")


def test_a_zombie_or_reused_pid_does_not_keep_a_dead_writers_temp(tmp_path: Path) -> None:
    """A killed writer left unreaped (an orphan under a container's PID 1) or its pid reused by a later
    process is not writing: the next write still sweeps its temp file up."""
    target = tmp_path / "images.npy"
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])  # exits at once; not waited for: a zombie
    deadline = time.monotonic() + 30
    while Path(f"/proc/{zombie.pid}/stat").read_text().split(") ")[1][0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    (tmp_path / f".images.{zombie.pid}.tmp.npy").write_bytes(b"partial")
    reused = tmp_path / f".images.{os.getpid()}.tmp.npy"  # a live pid, but this process started long before
    reused.write_bytes(b"partial")
    os.utime(reused, (time.time() - 10 * 365 * 86400,) * 2)
    with atomic_path(target) as tmp:
        np.save(tmp, np.arange(2.0))
    zombie.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.npy"]


def test_a_live_writers_temp_is_left_alone(tmp_path: Path) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        busy = tmp_path / f".images.{other.pid}.tmp.npy"
        busy.write_bytes(b"being written")
        write_json(tmp_path / "images.json", {})  # another target: not even looked at
        with atomic_path(tmp_path / "images.npy") as tmp:
            np.save(tmp, np.arange(2.0))
        assert busy.exists()
    finally:
        other.kill()
        other.wait()
