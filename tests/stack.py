"""Start the real local stack (`python -m local.stack`, as `make run` does) on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Variables tests/conftest.py sets for in-process unit tests; the stack gets its own.
UNIT_ONLY = {
    "STAGE",
    "RESOURCE_PREFIX",
    "PUBLIC_BASE_URL",
    "JWT_SIGNING_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningStack:
    process: subprocess.Popen[str]
    api: str  # http://localhost:PORT
    aws_endpoint: str
    sandbox: str
    log_path: Path

    def url(self, path: str) -> str:
        return self.api + path

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_stack(
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    timeout: float = 60,
    *,
    state_dir: Path | None = None,
    args: tuple[str, ...] = (),
) -> RunningStack:
    """`make run` on free ports, its state in `state_dir` (default: fresh, beside the log)."""
    api_port, emulator_port, sandbox_port = free_port(), free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in UNIT_ONLY}
    env.update(
        {
            "API_PORT": str(api_port),
            "EMULATOR_PORT": str(emulator_port),
            "SANDBOX_PORT": str(sandbox_port),
            "BCRYPT_ROUNDS": "4",
            "SCHEDULE_SECONDS": "1",
            "QUEUE_VISIBILITY_TIMEOUT": "2",
            "PYTHONUNBUFFERED": "1",
            "LOCAL_STATE_DIR": str(state_dir or log_path.with_suffix(".state")),
        }
    )
    env.update(extra_env or {})
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack", *args],
        cwd=PROJECT_DIR,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stack = RunningStack(
        process=process,
        api=f"http://localhost:{api_port}",
        aws_endpoint=env.get("AWS_ENDPOINT_URL") or f"http://127.0.0.1:{emulator_port}",
        sandbox=env.get("AAMARPAY_BASE_URL") or f"http://127.0.0.1:{sandbox_port}",
        log_path=log_path,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"local stack exited early:\n{stack.logs()}")
        try:
            if requests.get(stack.url("/api/health/"), timeout=1).status_code == 200:
                return stack
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    stack.stop()
    raise RuntimeError(f"local stack did not become healthy:\n{stack.logs()}")
