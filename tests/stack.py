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
from urllib.parse import urlsplit

import requests

from local import processes
from local.console import LOG_NAME

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
    aws_endpoint: str  # S3 and SQS (and DynamoDB with EMULATOR=moto)
    dynamodb_endpoint: str
    sandbox: str
    log_path: Path
    state_dir: Path

    def tool_env(self) -> dict[str, str]:
        """The environment for `make user` / `make recount` (`local.manage_user`, `local.recount`)
        aimed at this stack: they find its endpoints in its state directory."""
        env = {k: v for k, v in os.environ.items() if k not in UNIT_ONLY}
        return env | {"LOCAL_STATE_DIR": str(self.state_dir), "STAGE": "local"}

    def url(self, path: str) -> str:
        return self.api + path

    def console(self) -> str:
        """What `make run` printed."""
        return self.log_path.read_text(errors="replace")

    def logs(self) -> str:
        """The console, then the log file under its state directory (the JSON logs and EMF documents)."""
        log_file = self.state_dir / LOG_NAME
        return self.console() + (log_file.read_text(errors="replace") if log_file.exists() else "")

    def ports(self) -> list[int]:
        return [
            port
            for url in (self.api, self.aws_endpoint, self.dynamodb_endpoint, self.sandbox)
            if (port := urlsplit(url).port)
        ]

    def kill(self) -> None:
        """SIGKILL to every process of the stack at once (a power cut, as far as it can tell);
        returns once none of them is left (its ports are no proof: under pytest-xdist another
        worker's stack may take a freed port at once)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        deadline = time.monotonic() + 30
        while group_alive(self.process.pid):
            if time.monotonic() > deadline:
                raise RuntimeError("the stack's processes outlived its SIGKILL")
            time.sleep(0.05)
        # DynamoDB Local runs in a session of its own and dies with its parent, a moment later.
        if processes.wait_until_gone(str(self.state_dir / "dynamodb"), timeout_seconds=30):
            raise RuntimeError("the stack's DynamoDB Local outlived its SIGKILL")

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def group_alive(pgid: int) -> bool:
    """Whether a running (not zombie) process is left in process group `pgid` (Linux's /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # that process ended while we looked
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False


class PortTaken(RuntimeError):
    """A port chosen free was taken by someone else (another xdist worker's stack) before its part bound it."""


def start_stack(
    log_path: Path,
    extra_env: dict[str, str] | None = None,
    timeout: float = 60,
    *,
    state_dir: Path | None = None,
    args: tuple[str, ...] = (),
) -> RunningStack:
    """`make run` on free ports, its state in `state_dir` (default: fresh, beside the log).

    A port found free may be bound by another worker's stack before ours binds it: the part
    that lost says "Address already in use" and the stack exits (DynamoDB Local's engine too:
    the stack checks that the answering socket is its own). Then it starts again on new ports.
    """
    for _ in range(2):
        try:
            return _start_once(log_path, extra_env, timeout, state_dir=state_dir, args=args)
        except PortTaken:
            continue
    return _start_once(log_path, extra_env, timeout, state_dir=state_dir, args=args)


def _start_once(
    log_path: Path,
    extra_env: dict[str, str] | None,
    timeout: float,
    *,
    state_dir: Path | None,
    args: tuple[str, ...],
) -> RunningStack:
    api_port, emulator_port, sandbox_port, dynamodb_port = free_port(), free_port(), free_port(), free_port()
    state_dir = state_dir or log_path.with_suffix(".state")
    env = {k: v for k, v in os.environ.items() if k not in UNIT_ONLY}
    env.update(
        {
            "API_PORT": str(api_port),
            "EMULATOR_PORT": str(emulator_port),
            "SANDBOX_PORT": str(sandbox_port),
            "DYNAMODB_PORT": str(dynamodb_port),
            "BCRYPT_ROUNDS": "4",
            "SCHEDULE_SECONDS": "1",
            "QUEUE_VISIBILITY_TIMEOUT": "2",
            "PYTHONUNBUFFERED": "1",
            "LOCAL_STATE_DIR": str(state_dir),
        }
    )
    env.update(extra_env or {})
    on_moto = env.get("EMULATOR") == "moto"
    aws_endpoint = env.get("AWS_ENDPOINT_URL") or env.get("AWS_ENDPOINT_URL_S3") or f"http://127.0.0.1:{emulator_port}"
    dynamodb_endpoint = env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL")
    if not dynamodb_endpoint:
        dynamodb_endpoint = aws_endpoint if on_moto else f"http://127.0.0.1:{dynamodb_port}"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack", *args],
        cwd=PROJECT_DIR,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, which `kill()` kills whole
    )
    stack = RunningStack(
        process=process,
        api=f"http://localhost:{api_port}",
        aws_endpoint=aws_endpoint,
        dynamodb_endpoint=dynamodb_endpoint,
        sandbox=env.get("AAMARPAY_BASE_URL") or f"http://127.0.0.1:{sandbox_port}",
        log_path=log_path,
        state_dir=state_dir,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            logs = stack.logs()
            failure = PortTaken if "Address already in use" in logs else RuntimeError
            raise failure(f"local stack exited early:\n{logs}")
        try:
            answered = requests.get(stack.url("/api/health/"), timeout=5).status_code == 200
            if answered and processes.listens_on(process.pid, api_port):  # not another stack on a taken port
                return stack
        except requests.RequestException:  # not listening yet, or busy importing on a loaded machine
            pass
        time.sleep(0.2)
    stack.stop()
    raise RuntimeError(f"local stack did not become healthy:\n{stack.logs()}")
