"""Fair use: per-user quotas on files and bytes, and a per-user rate of upload requests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from chalicelib.accounts import accounts
from chalicelib.core import clock, errors
from chalicelib.core.config import settings
from chalicelib.core.models import File, RateLimit, User
from chalicelib.files import uploads, worker
from tests.concurrency import at_once
from tests.unit.conftest import Api
from tests.unit.files.test_uploads import ask, code, paid, store
from tests.unit.files.test_worker import event_for


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set quota variables for one test (settings are cached per process)."""

    def apply(**values: int) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, str(value))
        settings.cache_clear()

    yield apply
    monkeypatch.undo()
    settings.cache_clear()


def usage(api: Api, token: str) -> dict[str, int]:
    return api.call("GET", "/api/me/", token=token).data["usage"]


def test_me_reports_usage_and_limits(api: Api) -> None:
    token, _ = paid(api)
    assert usage(api, token) == {
        "files": 0,
        "bytes": 0,
        "max_files": settings().max_files_per_user,
        "max_bytes": settings().max_bytes_per_user,
    }
    ask(api, token, size=1000)
    ask(api, token, filename="b.docx", size=24)
    assert usage(api, token)["files"] == 2
    assert usage(api, token)["bytes"] == 1024


def test_a_deleted_file_gives_its_room_back(api: Api, limits: Callable[..., None]) -> None:
    limits(MAX_FILES_PER_USER=1)
    token, _ = paid(api)
    first = ask(api, token, size=500).data["file"]["id"]
    refused = ask(api, token)
    assert refused.status_code == 403
    assert refused.data["error"]["details"] == {"limit": "max_files", "max": 1, "used": 1}
    assert api.call("DELETE", f"/api/files/{first}/", token=token).status_code == 204
    assert usage(api, token)["files"] == 0
    assert usage(api, token)["bytes"] == 0
    assert ask(api, token).status_code == 201


def test_declared_bytes_are_the_byte_quota(api: Api, limits: Callable[..., None]) -> None:
    limits(MAX_BYTES_PER_USER=100)
    token, _ = paid(api)
    assert ask(api, token, size=60).status_code == 201
    refused = ask(api, token, size=41)
    assert code(refused) == "quota_exceeded"
    assert refused.data["error"]["details"] == {"limit": "max_bytes", "max": 100, "used": 60}
    assert ask(api, token, size=40).status_code == 201  # exactly at the limit is allowed
    assert usage(api, token)["bytes"] == 100


def test_twenty_parallel_requests_cannot_pass_the_file_quota(
    api: Api, atomic_dynamodb: None, limits: Callable[..., None]
) -> None:
    limits(MAX_FILES_PER_USER=5)
    token, user_id = paid(api)
    principal = accounts.authenticate(token)
    results = at_once(
        20, lambda i: uploads.request_upload(principal, {"filename": f"{i}.txt", "size": 10}), caught=(errors.ApiError,)
    )
    granted = [result for result in results if isinstance(result, dict)]
    refused = [result for result in results if isinstance(result, errors.ApiError)]
    assert len(granted) == 5
    assert {(error.status, error.code) for error in refused} == {(403, "quota_exceeded")}
    owned = list(File.by_user.query(user_id))
    assert sorted(item.id for item in owned) == sorted(result["file"]["id"] for result in granted)
    user = User.get(user_id, consistent_read=True)
    assert (user.files_held, user.bytes_held) == (5, 50)


def test_parallel_requests_cannot_pass_the_byte_quota(
    api: Api, atomic_dynamodb: None, limits: Callable[..., None]
) -> None:
    limits(MAX_BYTES_PER_USER=1000)
    token, user_id = paid(api)
    principal = accounts.authenticate(token)
    results = at_once(
        12, lambda i: uploads.request_upload(principal, {"filename": "a.txt", "size": 300}), caught=(errors.ApiError,)
    )
    assert sum(isinstance(result, dict) for result in results) == 3
    assert User.get(user_id, consistent_read=True).bytes_held == 900


def test_upload_requests_are_limited_per_minute(api: Api, limits: Callable[..., None]) -> None:
    limits(UPLOAD_REQUESTS_PER_MINUTE=3)
    token, user_id = paid(api)
    other, _ = paid(api, "bob")
    assert ask(api, token).status_code == 201
    assert ask(api, token, filename="x.exe").status_code == 400  # refused requests count as well
    assert ask(api, token).status_code == 201
    limited = ask(api, token)
    assert limited.status_code == 429
    assert code(limited) == "too_many_requests"
    assert ask(api, other).status_code == 201  # per user
    # The window closes after a minute: the next request opens a new one.
    RateLimit(f"uploads:{user_id}").update(actions=[RateLimit.expires_at.set(clock.now() - timedelta(seconds=1))])
    assert ask(api, token).status_code == 201


def test_parallel_upload_requests_pass_the_rate_limit_only_as_often_as_allowed(
    api: Api, atomic_dynamodb: None, limits: Callable[..., None]
) -> None:
    limits(UPLOAD_REQUESTS_PER_MINUTE=4)
    token, _ = paid(api)
    principal = accounts.authenticate(token)
    results = at_once(
        12, lambda i: uploads.request_upload(principal, {"filename": "a.txt", "size": 1}), caught=(errors.ApiError,)
    )
    assert sum(isinstance(result, dict) for result in results) == 4
    assert {error.code for error in results if isinstance(error, errors.ApiError)} == {"too_many_requests"}


def test_a_processed_file_holds_what_it_really_stores(api: Api) -> None:
    """The POST policy allows up to MAX_UPLOAD_BYTES whatever was declared: declaring one
    byte and sending more must not get the rest for free once the worker has measured it."""

    token, _ = paid(api)
    file_id = ask(api, token, size=1).data["file"]["id"]
    worker.handle_records([event_for(store(file_id, b"many more words than one byte"))])
    assert File.get(file_id).status == "completed"
    assert usage(api, token)["bytes"] == len(b"many more words than one byte")
    assert api.call("DELETE", f"/api/files/{file_id}/", token=token).status_code == 204
    assert usage(api, token)["bytes"] == 0
