"""`local.processes`: finding and waiting for the processes that hold a path (a killed stack's engine)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from local import dynamodb_local, processes


def _sleeper(marker: str, seconds: float) -> subprocess.Popen[bytes]:
    """A process with `marker` among its arguments, once /proc shows them (right after the fork it
    still shows its parent's)."""
    process = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})", marker])
    deadline = time.monotonic() + 10
    while process.pid not in processes.holding(marker):
        assert time.monotonic() < deadline, "the process never showed its arguments"
        time.sleep(0.01)
    return process


def test_a_process_holding_an_argument_is_found_and_waited_for() -> None:
    marker = f"/tmp/{uuid.uuid4().hex}/dynamodb"
    short = _sleeper(marker, 0.5)
    try:
        assert processes.holding(marker) == [short.pid]
        assert processes.wait_until_gone(marker, timeout_seconds=10) == []
    finally:
        short.kill()
        short.wait()


def test_a_new_engine_refuses_a_database_another_one_keeps_using(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "dynamodb"
    lingering = _sleeper(str(data_dir), 60)
    monkeypatch.setattr(
        processes, "wait_until_gone", lambda argument, timeout_seconds: processes.holding(argument)
    )  # no 10 s wait here: it is still there
    try:
        with pytest.raises(RuntimeError, match=f"pid {lingering.pid}"):
            dynamodb_local.launch(0, data_dir, spawn=lambda *args, **kwargs: pytest.fail("started beside it"))
    finally:
        lingering.kill()
        lingering.wait()


def test_only_the_process_that_owns_a_listening_socket_listens_on_its_port() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        port = listening.getsockname()[1]
        other = _sleeper(f"/tmp/{uuid.uuid4().hex}", 30)
        try:
            assert processes.listens_on(os.getpid(), port)
            assert not processes.listens_on(other.pid, port)  # it could answer nothing there
            assert not processes.listens_on(os.getpid(), port + 1 if port < 65535 else port - 1)
        finally:
            other.kill()
            other.wait()
