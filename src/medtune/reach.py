"""Is a network service there? One TCP connect, instead of a client's minutes of retries.

`ray.init` on an address no head answers, and MLflow's HTTP client on a tracking server that is not there,
both retry for minutes (over 200 s each, measured) and end in C++ warnings or a traceback. A mistyped
RAY_ADDRESS or MLFLOW_TRACKING_URI deserves one line at once; the callers name the setting.
"""

from __future__ import annotations

import socket

TIMEOUT_S = 10.0  # a live service accepts in milliseconds; only a dropped packet waits this long


def unreachable(host: str, port: int, timeout_s: float = TIMEOUT_S) -> str | None:
    """Why no TCP connection to host:port could be made (`Connection refused`, `timed out`); None: it was."""
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return None
