"""`make run`'s process: prints where each part listens, and Ctrl-C leaves nothing running."""

from __future__ import annotations

import signal
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.stack import start_stack

pytestmark = pytest.mark.integration


def _port_is_free(url: str) -> bool:
    port = urlsplit(url).port
    assert port is not None
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_ctrl_c_stops_every_part(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "stack.log")
    try:
        output = stack.logs()
        for part in ("AWS endpoint", "aamarPay", "API", "Dashboard", "Ready."):
            assert part in output
        stack.process.send_signal(signal.SIGINT)
        assert stack.process.wait(timeout=15) == 0
    finally:
        stack.stop()
    assert "Stopped." in stack.logs()
    for url in (stack.api, stack.aws_endpoint, stack.sandbox):
        assert _port_is_free(url), url
