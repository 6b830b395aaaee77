"""Project locks between real processes: a second holder is refused with one line (or waits), and a
holder killed with SIGKILL leaves no stale lock behind."""

from __future__ import annotations

import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from medtune.errors import MedtuneError
from medtune.locks import exclusive

HOLD = """
import sys, time
from medtune.locks import exclusive
with exclusive(sys.argv[1], "`medtune test`"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    print("releasing", flush=True)
"""


def hold(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_holder_is_refused_with_one_line(tmp_path: Path) -> None:
    lock = tmp_path / "locks" / "test.lock"
    holder = hold(lock, 30)
    try:
        with pytest.raises(MedtuneError) as info, exclusive(lock, "`medtune test`"):
            pass
        message = str(info.value)
        assert message.startswith("`medtune test` is already running in this project (")
        assert f"pid {holder.pid}" in message and "\n" not in message
    finally:
        holder.kill()
        holder.wait()


def test_a_waiting_holder_gets_the_lock_when_the_first_one_is_done(tmp_path: Path) -> None:
    lock = tmp_path / "promote.lock"
    holder = hold(lock, 1.5)
    started = time.monotonic()
    with exclusive(lock, "`medtune promote`", wait_s=60):
        waited = time.monotonic() - started
        # We only got in once the holder had left its block: it said so just before (it may still be exiting).
        assert holder.stdout is not None and select.select([holder.stdout], [], [], 0)[0], "got in too early"
        assert holder.stdout.readline().strip() == "releasing"
    holder.wait()
    assert 0.5 < waited < 30


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    lock = tmp_path / "test.lock"
    holder = hold(lock, 60)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with exclusive(lock, "`medtune test`"):  # immediately available: the kernel dropped it
        assert lock.is_file()
