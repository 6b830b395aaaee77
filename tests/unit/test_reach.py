"""One TCP connect says whether a service is there."""

from __future__ import annotations

import socket
import time

from tests._net import closed_port

from medtune.reach import unreachable


def test_a_listening_port_is_reachable_and_a_closed_one_says_why() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert unreachable("127.0.0.1", server.getsockname()[1]) is None
    started = time.monotonic()
    assert unreachable("127.0.0.1", closed_port()) == "Connection refused"
    assert time.monotonic() - started < 5
