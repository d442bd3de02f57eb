"""The real local stack over HTTP: pay in the sandbox → presigned POST to S3 → SQS → worker → count."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from chalicelib.core import clock
from tests.documents import docx_bytes
from tests.journeys import Customer

pytestmark = pytest.mark.integration


def new_user(stack: Any, *, paid: bool) -> dict[str, str]:
    """A new account's bearer header; `paid` pays through the sandbox's page as a browser does."""
    customer = Customer(requests.Session(), stack.api, f"up{clock.new_id()[:12]}", "upload journey password")
    customer.register()
    customer.log_in()
    if paid:
        customer.pay()
    return customer.bearer


@pytest.fixture(scope="module")
def bearer(stack: Any) -> dict[str, str]:
    return new_user(stack, paid=True)


def upload(
    stack: Any, bearer: dict[str, str], filename: str, content: bytes, declared_size: int | None = None
) -> tuple[str, requests.Response]:
    """Ask for a presigned POST and send the bytes to S3 (fields first, then the file)."""
    size = len(content) if declared_size is None else declared_size
    asked = requests.post(
        stack.url("/api/upload/"), json={"filename": filename, "size": size}, headers=bearer, timeout=10
    )
    assert asked.status_code == 201, asked.text
    post = asked.json()["upload"]
    sent = requests.post(post["url"], data=post["fields"], files={"file": (filename, content)}, timeout=30)
    return asked.json()["file"]["id"], sent


def settled_file(stack: Any, bearer: dict[str, str], file_id: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view = requests.get(stack.url(f"/api/files/{file_id}/"), headers=bearer, timeout=10).json()
        if view["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return view
        time.sleep(0.2)


def test_unpaid_user_cannot_upload(stack: Any) -> None:
    bearer = new_user(stack, paid=False)
    answer = requests.post(stack.url("/api/upload/"), json={"filename": "a.txt", "size": 3}, headers=bearer, timeout=10)
    assert (answer.status_code, answer.json()["error"]["code"]) == (402, "payment_required")


def test_txt_upload_is_counted_and_downloadable(stack: Any, bearer: dict[str, str]) -> None:
    content = "এক দুই তিন\nfour five\r\n".encode()
    file_id, sent = upload(stack, bearer, "নোট.txt", content)
    assert sent.status_code == 204, sent.text
    view = settled_file(stack, bearer, file_id)
    assert (view["status"], view["word_count"], view["size"], view["error"]) == ("completed", 5, len(content), None)
    downloaded = requests.get(view["download_url"], timeout=10)
    assert downloaded.status_code == 200
    assert downloaded.content == content
    listed = requests.get(stack.url("/api/files/"), headers=bearer, timeout=10).json()["items"]
    assert file_id in [item["id"] for item in listed]


def test_docx_upload_is_counted(stack: Any, bearer: dict[str, str]) -> None:
    file_id, sent = upload(stack, bearer, "report.docx", docx_bytes("One two three.", "Four five"))
    assert sent.status_code == 204, sent.text
    view = settled_file(stack, bearer, file_id)
    assert (view["status"], view["word_count"]) == ("completed", 5)


def test_oversize_body_is_refused_or_failed(stack: Any, bearer: dict[str, str]) -> None:
    """A client that declares a small size and sends more: AWS refuses it from the signed
    policy; moto does not, so the worker must."""
    max_bytes = 10 * 1024 * 1024
    file_id, sent = upload(stack, bearer, "big.txt", b"word " * (max_bytes // 5) + b"extra", declared_size=100)
    if sent.status_code == 204:
        view = settled_file(stack, bearer, file_id)
        assert view["status"] == "failed"
        assert "larger than" in view["error"]
        assert "download_url" not in view
    else:
        assert sent.status_code == 400  # EntityTooLarge on AWS / LocalStack
        assert settled_file(stack, bearer, file_id, timeout=2)["status"] == "pending_upload"


def test_binary_txt_ends_failed(stack: Any, bearer: dict[str, str]) -> None:
    file_id, sent = upload(stack, bearer, "photo.txt", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8)
    assert sent.status_code == 204
    view = settled_file(stack, bearer, file_id)
    assert (view["status"], view["word_count"]) == ("failed", None)
    assert view["error"]


def test_another_users_file_is_not_found(stack: Any, bearer: dict[str, str]) -> None:
    file_id, _ = upload(stack, bearer, "mine.txt", b"private words")
    stranger = new_user(stack, paid=False)
    answer = requests.get(stack.url(f"/api/files/{file_id}/"), headers=stranger, timeout=10)
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "not_found")
