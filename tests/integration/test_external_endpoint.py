"""LocalStack or any other endpoint by configuration alone: no emulator of ours starts, resources
are created there, and the app works against it."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests

from tests.stack import free_port, start_stack

pytestmark = pytest.mark.integration


@pytest.fixture
def external_emulator() -> Iterator[str]:
    """A moto server in its own process, standing in for LocalStack."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            requests.get(f"{url}/moto-api/", timeout=1)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline, "the external emulator did not start"
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


def _tables(endpoint: str) -> list[str]:
    client = boto3.client(
        "dynamodb", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    return client.list_tables()["TableNames"]


@pytest.mark.parametrize("variable", ["AWS_ENDPOINT_URL", "LOCALSTACK_HOST"])
def test_stack_runs_against_an_external_endpoint(external_emulator: str, variable: str, tmp_path: Path) -> None:
    value = external_emulator if variable == "AWS_ENDPOINT_URL" else external_emulator.removeprefix("http://")
    stack = start_stack(tmp_path / "stack.log", extra_env={variable: value})
    try:
        assert f"{external_emulator} (external)" in stack.logs()
        assert "paidupload-local-users" in _tables(external_emulator)
        credentials = {"username": "outside", "password": "outside password"}
        registered = requests.post(
            stack.url("/api/register/"), json={**credentials, "email": "o@example.com"}, timeout=10
        )
        assert registered.status_code == 201, registered.text
        assert requests.post(stack.url("/api/login/"), json=credentials, timeout=10).status_code == 200
    finally:
        stack.stop()
