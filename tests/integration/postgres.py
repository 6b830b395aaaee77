"""A throwaway PostgreSQL server for tests: initdb in a temp dir, a free loopback port, stopped after.

Uses the distribution's server binaries (`make test` installs them when missing): Debian keeps them in
/usr/lib/postgresql/<version>/bin, other systems on PATH. initdb refuses to run as root, so under root
the server runs as the `postgres` user (runuser), in a temp dir handed to that user.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests.integration.mlflow_server import free_port

USER = "postgres"


def server_bin() -> Path:
    """The folder holding initdb and pg_ctl; fails with the fix in one line when there is none."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    found = shutil.which("pg_ctl")
    candidates += [Path(found).parent] if found else []
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found: run `make test`, which installs "
                       "them, or `apt-get install postgresql`")


def _as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", USER, "--", *cmd] if os.geteuid() == 0 else cmd


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """Yields `postgresql://postgres@127.0.0.1:<port>` of a fresh server; stopped and removed afterwards,
    also when the body fails."""
    binaries = server_bin()
    # Not under pytest's tmp_path: as root that is a 0700 root folder the server user cannot enter.
    home = Path(tempfile.mkdtemp(prefix="medtune-pg-"))
    data, port = home / "data", free_port()
    try:
        if os.geteuid() == 0:
            shutil.chown(home, USER, USER)
        _run(binaries / "initdb", "-D", data, "-U", USER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
        options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        try:
            _run(binaries / "pg_ctl", "-D", data, "-o", options, "-l", home / "server.log", "-w", "-t", "60", "start")
            yield f"postgresql://{USER}@127.0.0.1:{port}"
        finally:
            _stop(binaries, data)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _run(*cmd: object) -> None:
    """Run a server tool as the server user; a failure raises with the tool's own words (and the log's)."""
    proc = subprocess.run(_as_server_user([str(c) for c in cmd]), capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        log = Path(str(cmd[cmd.index("-l") + 1])) if "-l" in cmd else None
        detail = log.read_text()[-2000:] if log and log.is_file() else proc.stderr[-2000:]
        raise RuntimeError(f"{Path(str(cmd[0])).name} failed ({proc.returncode}): {detail}")


def _stop(binaries: Path, data: Path) -> None:
    """pg_ctl stop (immediate: the data is thrown away); SIGKILL the postmaster if that fails."""
    stop = [str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "-t", "30", "stop"]
    if subprocess.run(_as_server_user(stop), capture_output=True, timeout=60).returncode == 0:
        return
    with contextlib.suppress(OSError, ValueError, IndexError):
        os.kill(int((data / "postmaster.pid").read_text().splitlines()[0]), 9)
