"""AWS's DynamoDB Local (the engine LocalStack itself runs) as a child process of the stack.

It is a Java program with its tables in one SQLite file under `.local/dynamodb/`: every
request is committed before it is answered, so a `kill -9` of the whole stack loses nothing
that was acknowledged. `local.install` puts the pinned release in `.tools/` (never in git).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import requests

from local import processes

PROJECT_DIR = Path(__file__).resolve().parent.parent
INSTALL_DIR = Path(os.environ.get("DYNAMODB_LOCAL_DIR") or PROJECT_DIR / ".tools" / "dynamodb-local")
START_TIMEOUT_SECONDS = 60


class MissingEngine(RuntimeError):
    """DynamoDB Local or Java is not installed; the message says how to get it."""


def jar_path() -> Path:
    return INSTALL_DIR / "DynamoDBLocal.jar"


def command(port: int, data_dir: Path) -> list[str]:
    """The documented way to run it, with a JVM tuned for a fast start rather than peak speed."""
    java = shutil.which("java")
    if java is None or not jar_path().exists():
        raise MissingEngine(
            "DynamoDB Local is not installed: run `make run` (it installs Java 17 and DynamoDB Local), "
            "or `make run EMULATOR=moto` to run every service on moto instead."
        )
    return [
        java,
        "-XX:+UseSerialGC",  # one small heap, no GC threads fighting the API for 2 cores
        "-XX:TieredStopAtLevel=1",  # C1 only: ready in about a second, fast enough for a local stack
        "-Xss512k",
        f"-Djava.library.path={INSTALL_DIR / 'DynamoDBLocal_lib'}",
        "-jar",
        str(jar_path()),
        "-port",
        str(port),
        "-dbPath",
        str(data_dir),
        "-sharedDb",  # one database whatever the credentials and region of the caller
        "-disableTelemetry",  # offline, and nothing about the developer's machine leaves it
    ]


def launch(port: int, data_dir: Path, spawn: Callable[..., subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """Start it (`wait_until_answering` tells when it is ready); it logs to `dynamodb-local.log` beside its data.

    In a session of its own, so Ctrl-C in the terminal does not stop it before the workers
    have finished with it; `spawn` makes it die with the stack all the same.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    _wait_for_previous_engine(data_dir)
    with _log(data_dir).open("ab") as log:
        # Its working directory is its data directory: it writes `dynamodb-local-metadata.json` there.
        return spawn(
            command(port, data_dir), cwd=data_dir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _wait_for_previous_engine(data_dir: Path) -> None:
    """After a `kill -9` of a stack its engine dies a moment later (by PR_SET_PDEATHSIG, once its
    parent is gone). Two engines on one SQLite file lose acknowledged writes (seen: a registration
    answered 201 before the kill was gone after an immediate restart), so a new one waits for the
    old one to end, and refuses to start beside one that does not."""
    if left := processes.wait_until_gone(str(data_dir), timeout_seconds=10):
        raise RuntimeError(
            f"Another DynamoDB Local (pid {', '.join(map(str, left))}) is using {data_dir}: stop that stack first."
        )


def _log(data_dir: Path) -> Path:
    return data_dir.parent / "dynamodb-local.log"


def wait_until_answering(process: subprocess.Popen[bytes], port: int, data_dir: Path) -> None:
    """Returns once it answers DynamoDB's API (not merely once its port is open), from a socket of
    its own: a port some other process took first (another stack's engine) answers too, and the
    stack would write to the wrong database; this one then fails to bind and exits, saying so."""
    log = _log(data_dir)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"DynamoDB Local exited with {process.returncode}: {processes.log_tail(log)}")
        if _answers(port) and processes.listens_on(process.pid, port):
            return
        time.sleep(0.05)
    stop(process)
    raise RuntimeError("DynamoDB Local did not start answering")


def _answers(port: int) -> bool:
    try:
        reply = requests.post(
            f"http://127.0.0.1:{port}/",
            data="{}",
            headers={
                "X-Amz-Target": "DynamoDB_20120810.ListTables",
                "Content-Type": "application/x-amz-json-1.0",
                "Authorization": "AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, "
                "SignedHeaders=host, Signature=0",
            },
            timeout=1,
        )
    except requests.RequestException:
        return False
    return reply.status_code == 200


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL: either is safe, every answered write is already committed."""
    processes.stop(process, grace_seconds=10)
