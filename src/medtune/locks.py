"""One process at a time per project for the steps that must not interleave: scoring the test split, and
moving the registry's aliases.

What a lock file guarantees: mutual exclusion among processes on one machine that open the same file
(`flock`). The kernel drops the lock when its holder dies, even on SIGKILL, so there are no stale locks
to clean up. What it cannot guarantee: exclusion from processes on another machine (a second clone of
the project, a CI runner, a Ray head) that use the same remote MLflow server, nor on network filesystems
whose flock is local to each client. MLflow offers no compare-and-set on aliases, so across machines the
registry is the record and races are detected after the fact (tracking/registry.py re-reads the alias it
moved), not prevented: run promote and test from one place per registered model.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from medtune.errors import MedtuneError

LOCKS = Path(".medtune/locks")  # git-ignored, beside the local HMAC key; never a DVC output
F = TypeVar("F", bound=Callable[..., Any])


@contextlib.contextmanager
def exclusive(path: Path, what: str, wait_s: float = 0.0) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the block; wait up to `wait_s`, then fail with one line.

    The file records who holds it (host, pid, since), for the message another process shows.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, what, wait_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{socket.gethostname()} pid {os.getpid()} since "
                      f"{time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(fd: int, path: Path, what: str, wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "unknown"
                waited = f" (waited {wait_s:.0f} s)" if wait_s else ""
                raise MedtuneError(f"{what} is already running in this project ({holder}; lock {path}){waited}; "
                                   "run one at a time") from None
            time.sleep(0.1)


def one_at_a_time(name: str, what: str, wait_s: float = 0.0) -> Callable[[F], F]:
    """Decorate a stage's `run` so it holds the project's lock LOCKS/<name>.lock while it runs."""
    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with exclusive(LOCKS / f"{name}.lock", what, wait_s):
                return fn(*args, **kwargs)
        return locked  # type: ignore[return-value]
    return decorate

