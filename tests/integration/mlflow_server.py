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


class MlflowServer:
    """`mlflow server` on 127.0.0.1 that can be stopped and started again on the same port and store."""

    def __init__(self, workdir: Path, backend_uri: str | None = None, port: int | None = None) -> None:
        self.workdir, self.port = workdir, port or free_port()
        self.backend_uri = backend_uri or f"sqlite:///{workdir / 'server.db'}"
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> str:
        cmd = [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", self.backend_uri,
               "--artifacts-destination", str(self.workdir / "server-artifacts"), "--host", "127.0.0.1",
               "--port", str(self.port), "--workers", "1"]
        with open(self.workdir / f"mlflow-server-{self.port}.log", "a") as log:
            self.proc = subprocess.Popen(cmd, env=tool_env(), start_new_session=True, stdout=log, stderr=log)
        wait_healthy(self.url, 90, self.proc)
        return self.url

    def stop(self) -> None:
        """Stop the whole process group: the server starts a job runner with its own workers."""
        if self.proc is None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


@contextmanager
def mlflow_server(workdir: Path, backend_uri: str | None = None, port: int | None = None) -> Iterator[str]:
    """Yields the tracking URI of a running server (SQLite backend unless given); always stopped."""
    server = MlflowServer(workdir, backend_uri, port)
    try:
        yield server.start()
    finally:
        server.stop()
