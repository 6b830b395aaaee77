"""A real `mlflow server` process on loopback for tests; the whole process group is stopped after."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration._proc import tool_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, timeout: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"mlflow server at {url} not healthy after {timeout}s")


@contextmanager
def mlflow_server(workdir: Path, backend_uri: str | None = None, port: int | None = None) -> Iterator[str]:
    """Yields the tracking URI of a server with a SQLite (or given) backend and a local artifact root."""
    port = port or free_port()
    backend_uri = backend_uri or f"sqlite:///{workdir / 'server.db'}"
    cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", backend_uri,
           "--artifacts-destination", str(workdir / "server-artifacts"), "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    log = open(workdir / f"mlflow-server-{port}.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(cmd, env=tool_env(), start_new_session=True, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, 90, proc)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server starts a job runner with its own workers
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
