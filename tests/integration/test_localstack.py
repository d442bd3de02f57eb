"""The whole upload path on LocalStack's S3 and SQS (`EMULATOR=localstack`): presigned POST
→ S3 event → SQS → worker → count, with DynamoDB on DynamoDB Local, and LocalStack holding
the presigned POST to its policy (it checks no signature: tests/integration/test_presigned_post.py
proves that part on SeaweedFS)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from local import localstack
from tests.external_tools import LOCALSTACK, require
from tests.journeys import paid_customer
from tests.stack import RunningStack, start_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def on_localstack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    require(LOCALSTACK, localstack.python().exists())
    stack = start_stack(tmp_path_factory.mktemp("localstack") / "stack.log", extra_env={"EMULATOR": "localstack"})
    yield stack
    stack.stop()


def test_an_upload_is_counted_through_localstacks_s3_and_sqs(on_localstack: RunningStack) -> None:
    assert "(LocalStack" in on_localstack.logs()
    customer = paid_customer(on_localstack.api, "onlocalstack")
    file_id = customer.upload("notes.txt", "one two three এক দুই".encode())
    settled = customer.wait_settled(file_id, timeout=60)
    assert (settled["status"], settled["word_count"]) == ("completed", 5)
    assert settled["download_url"].startswith("http://127.0.0.1:")
    assert requests.get(settled["download_url"], timeout=10).content == "one two three এক দুই".encode()


def test_localstack_refuses_a_post_outside_its_policy(on_localstack: RunningStack) -> None:
    customer = paid_customer(on_localstack.api, "policytester")
    asked = customer.http.post(
        customer.url("/api/upload/"), json={"filename": "small.txt", "size": 5}, headers=customer.bearer, timeout=30
    ).json()
    post = asked["upload"]
    oversize = requests.post(
        post["url"], data=post["fields"], files={"file": ("small.txt", b"x" * (post["max_bytes"] + 1))}, timeout=30
    )
    assert oversize.status_code == 400 and "EntityTooLarge" in oversize.text, oversize.text
    elsewhere = {**post["fields"], "key": post["fields"]["key"] + "-someone-else"}
    moved = requests.post(post["url"], data=elsewhere, files={"file": ("small.txt", b"hello")}, timeout=30)
    assert moved.status_code == 403, moved.text
    view = customer.get(f"/api/files/{asked['file']['id']}/")
    assert view["status"] == "pending_upload"  # nothing reached S3, nothing was counted
