"""LocalStack's community runtime serving S3 and SQS, in host mode (no Docker), as a child process.

`make run EMULATOR=localstack` and the tests that prove our upload path on it. It runs from its
own Python 3.13 venv in `.tools/localstack/` (`python -m local.install localstack`). It holds
a presigned POST to its policy (size range, exact key, Content-Type, expiry) as AWS does, but
checks no signature at all. Its state lives in memory only: the community runtime has no
persistence (`PERSISTENCE=1` is read and ignored; nothing survives SIGTERM or SIGKILL),
which is why `make run` keeps S3 and SQS on moto by default (docs/local-stack.md).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import requests

from local import processes

PROJECT_DIR = Path(__file__).resolve().parent.parent
INSTALL_DIR = Path(os.environ.get("LOCALSTACK_VENV") or PROJECT_DIR / ".tools" / "localstack")
START_TIMEOUT_SECONDS = 90
LOG_NAME = "localstack.log"


class MissingLocalStack(RuntimeError):
    """Its venv is not installed; the message says how to get it."""


def python() -> Path:
    return INSTALL_DIR / "bin" / "python"


def launch(
    port: int, volume_dir: Path, spawn: Callable[..., subprocess.Popen[bytes]], services: str = "s3,sqs"
) -> subprocess.Popen[bytes]:
    """Start it (`wait_until_ready` tells when its services are available); it logs to
    `localstack.log` in `volume_dir`."""
    if not python().exists():
        raise MissingLocalStack(
            "LocalStack is not installed: run `python -m local.install localstack` (make test does)."
        )
    volume_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith(("AWS_ENDPOINT_URL", "LOCALSTACK_"))
    }
    environment |= {
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "GATEWAY_SERVER": "hypercorn",  # the default server listens on every interface whatever it is told
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",  # URLs it hands out: not *.localstack.cloud (offline)
        "SQS_ENDPOINT_STRATEGY": "path",
        "SERVICES": services,
        # This machine has /.dockerenv: without these it believes it is in its own container,
        # ignores the volume and wipes /tmp/localstack, shared by every instance.
        "OVERRIDE_IN_DOCKER": "0",
        "FILESYSTEM_ROOT": str(volume_dir / "filesystem"),
        "LOCALSTACK_VOLUME_DIR": str(volume_dir),
        "SKIP_SSL_CERT_DOWNLOAD": "1",  # offline: no certificate from localstack.cloud
        "DISABLE_EVENTS": "1",  # no analytics calls home
        "DNS_ADDRESS": "0",  # no DNS server of its own
    }
    with (volume_dir / LOG_NAME).open("ab") as log:
        return spawn(
            [str(python()), "-m", "localstack.runtime.main"],
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches it through the stack's stop, after the workers
        )


def wait_until_ready(process: subprocess.Popen[bytes], port: int, volume_dir: Path, services: str = "s3,sqs") -> None:
    """Until its health endpoint lists every service as available (not merely once it listens)."""
    log = volume_dir / LOG_NAME
    wanted = services.split(",")
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"LocalStack exited with {process.returncode}: {processes.log_tail(log)}")
        try:
            health = requests.get(f"http://127.0.0.1:{port}/_localstack/health", timeout=1).json()
            if all(health["services"].get(name) in ("available", "running") for name in wanted):
                return
        except (requests.RequestException, ValueError, KeyError):
            pass
        time.sleep(0.1)
    stop(process)
    raise RuntimeError("LocalStack did not become ready")


def stop(process: subprocess.Popen[bytes]) -> None:
    processes.stop(process, grace_seconds=15)
