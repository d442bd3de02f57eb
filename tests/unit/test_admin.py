"""The admin API: who may do what, filters, day-sharded feeds, cursors, stats, the no-Scan rule."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from chalicelib import accounts, clock, uploads, worker
from chalicelib.models import Counter, File, Payment, User, status_day
from local.sandbox import Sandbox
from tests.aamarpay_browser import press
from tests.scan_guard import ScanIssued
from tests.unit.conftest import Api

ROLES = ("user", "staff", "superuser")
READS = [
    "/api/admin/users/",
    "/api/admin/transactions/",
    "/api/admin/files/",
    "/api/admin/activity/",
    "/api/admin/stats/",
]
MISSING = "0" * 32


@pytest.fixture
def tokens(api: Api) -> dict[str, str]:
    """An access token per role (and the superuser's id as `superuser_id`)."""
    result = {}
    for role in ROLES:
        user = accounts.create_user(role, f"{role}@example.com", "long enough", role=role)
        result[role] = api.login(role, "long enough")["access"]
        result[f"{role}_id"] = user.id
    return result


def _actions(api: Api, path: str, token: str | None, body: Any = None) -> int:
    method = "POST" if "reprocess" in path or "verify" in path or "staff" in path else "GET"
    return api.call(method, path, body, token).status_code


@pytest.mark.parametrize("path", READS)
def test_reads_are_for_staff_and_superusers(api: Api, tokens: dict[str, str], path: str) -> None:
    assert _actions(api, path, None) == 401
    assert _actions(api, path, "not-a-token") == 401
    assert _actions(api, path, tokens["user"]) == 403
    assert _actions(api, path, tokens["staff"]) == 200
    assert _actions(api, path, tokens["superuser"]) == 200


@pytest.mark.parametrize(
    "path",
    [
        f"/api/admin/files/{MISSING}/reprocess/",
        f"/api/admin/transactions/{MISSING}/verify/",
        f"/api/admin/users/{MISSING}/staff/",
    ],
)
def test_actions_are_for_superusers_only(api: Api, tokens: dict[str, str], path: str) -> None:
    body = {"is_staff": True}
    assert _actions(api, path, None, body) == 401
    assert _actions(api, path, tokens["user"], body) == 403
    assert _actions(api, path, tokens["staff"], body) == 403
    assert _actions(api, path, tokens["superuser"], body) == 404  # allowed, but nothing by that id


def test_forbidden_answer_has_the_contract_shape(api: Api, tokens: dict[str, str]) -> None:
    response = api.call("GET", "/api/admin/users/", token=tokens["user"])
    assert response.data["error"]["code"] == "forbidden"


def test_grant_and_revoke_staff_is_logged_with_the_actor(api: Api, tokens: dict[str, str]) -> None:
    target = api.register("carol").data["user"]["id"]
    granted = api.call("POST", f"/api/admin/users/{target}/staff/", {"is_staff": True}, tokens["superuser"])
    assert granted.status_code == 200
    assert granted.data["user"]["is_staff"] is True
    carol = api.login("carol")["access"]
    assert api.call("GET", "/api/admin/users/", token=carol).status_code == 200
    revoked = api.call("POST", f"/api/admin/users/{target}/staff/", {"is_staff": False}, tokens["superuser"])
    assert revoked.data["user"]["is_staff"] is False
    assert api.call("GET", "/api/admin/users/", token=carol).status_code == 403
    feed = api.call("GET", f"/api/admin/activity/?action=admin_staff_changed&user_id={target}", token=tokens["staff"])
    entries = feed.data["items"]
    assert [e["metadata"]["is_staff"] for e in entries] == [False, True]
    assert {e["actor_id"] for e in entries} == {tokens["superuser_id"]}


@pytest.mark.parametrize(
    ("body", "status"),
    [({}, 400), ({"is_staff": "yes"}, 400), ({"is_staff": 1}, 400)],
)
def test_set_staff_validates_its_body(api: Api, tokens: dict[str, str], body: dict, status: int) -> None:
    target = api.register("carol").data["user"]["id"]
    assert api.call("POST", f"/api/admin/users/{target}/staff/", body, tokens["superuser"]).status_code == status


def test_superuser_cannot_demote_self_or_another_superuser(api: Api, tokens: dict[str, str]) -> None:
    own = api.call(
        "POST", f"/api/admin/users/{tokens['superuser_id']}/staff/", {"is_staff": False}, tokens["superuser"]
    )
    assert (own.status_code, own.data["error"]["code"]) == (400, "cannot_change_self")
    other = accounts.create_user("root2", "root2@example.com", "long enough", role="superuser")
    response = api.call("POST", f"/api/admin/users/{other.id}/staff/", {"is_staff": False}, tokens["superuser"])
    assert (response.status_code, response.data["error"]["code"]) == (400, "superuser_is_staff")


def _payment(user_id: str, status: str, days_ago: int) -> Payment:
    created_at = clock.iso(clock.now() - timedelta(days=days_ago))
    payment = Payment(
        clock.new_id(),
        user_id=user_id,
        status=status,
        amount="100.00",
        currency="BDT",
        created_at=created_at,
        updated_at=created_at,
        day=clock.day_of(created_at),
        status_day=status_day(status, created_at),
    )
    payment.save()
    return payment


def _pay(api: Api, token: str) -> None:
    """Initiate, press Pay on the sandbox page, and deliver its form like the browser would."""
    initiated = api.call("POST", "/api/initiate-payment/", {}, token).data
    hop = press(initiated["payment_url"], "pay")
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    answer = api.client.http.post(urlsplit(hop.url).path, headers=headers, body=urlencode(hop.form).encode())
    assert answer.status_code == 200, answer.body


def _since(days_ago: int) -> None:
    """Pretend the service started `days_ago` days ago (the oldest day feeds walk back to)."""
    start = (clock.now() - timedelta(days=days_ago)).date().isoformat()
    Counter("users").update(actions=[Counter.since.set(start)])


def _walk(api: Api, path: str, token: str, limit: int = 2) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        separator = "&" if "?" in path else "?"
        url = f"{path}{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = api.call("GET", url, token=token)
        assert response.status_code == 200, response.data
        items.extend(response.data["items"])
        cursor = response.data["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("pagination did not end")


def test_payments_feed_walks_days_newest_first_with_filters(api: Api, tokens: dict[str, str]) -> None:
    _since(10)
    alice, bob = tokens["user_id"], tokens["staff_id"]
    made = [
        _payment(alice, "success", 0),
        _payment(bob, "initiated", 0),
        _payment(alice, "failed", 2),
        _payment(bob, "success", 5),
        _payment(alice, "initiated", 9),
    ]
    everything = _walk(api, "/api/admin/transactions/", tokens["staff"])
    newest_first = sorted(made, key=lambda p: p.created_at, reverse=True)
    assert [p["transaction_id"] for p in everything] == [p.transaction_id for p in newest_first]
    successes = _walk(api, "/api/admin/transactions/?status=success", tokens["staff"], limit=1)
    assert [p["transaction_id"] for p in successes] == [made[0].transaction_id, made[3].transaction_id]
    alices = _walk(api, f"/api/admin/transactions/?user_id={alice}", tokens["staff"])
    assert {p["user_id"] for p in alices} == {alice} and len(alices) == 3
    alices_initiated = _walk(api, f"/api/admin/transactions/?user_id={alice}&status=initiated", tokens["staff"])
    assert [p["transaction_id"] for p in alices_initiated] == [made[4].transaction_id]


def test_files_and_users_feeds(api: Api, tokens: dict[str, str]) -> None:
    created_at = clock.now_iso()
    item = File(
        clock.new_id(),
        user_id=tokens["user_id"],
        filename="a.txt",
        size=3,
        content_type="text/plain",
        object_key="uploads/x/y.txt",
        status="failed",
        error="broken",
        created_at=created_at,
        updated_at=created_at,
        day=clock.day_of(created_at),
        status_day=status_day("failed", created_at),
    )
    item.save()
    files = api.call("GET", "/api/admin/files/?status=failed", token=tokens["staff"]).data["items"]
    assert [(f["id"], f["user_id"], f["error"]) for f in files] == [(item.id, tokens["user_id"], "broken")]
    assert api.call("GET", "/api/admin/files/?status=completed", token=tokens["staff"]).data["items"] == []
    users = _walk(api, "/api/admin/users/", tokens["staff"], limit=2)
    assert [u["username"] for u in users] == ["superuser", "staff", "user"]
    assert all("password" not in str(u) for u in users)


@pytest.mark.parametrize(
    "query",
    [
        "/api/admin/transactions/?status=paid",
        "/api/admin/files/?status=done",
        "/api/admin/activity/?action=hack",
        "/api/admin/transactions/?user_id=../../etc",
        "/api/admin/files/?limit=1000",
        "/api/admin/users/?cursor=garbage",
    ],
)
def test_bad_filters_and_cursors_are_400(api: Api, tokens: dict[str, str], query: str) -> None:
    response = api.call("GET", query, token=tokens["staff"])
    assert response.status_code == 400
    assert response.data["error"]["code"] in {"invalid_filter", "invalid_limit", "invalid_cursor"}


def test_cursor_from_another_list_or_filter_is_refused(api: Api, tokens: dict[str, str]) -> None:
    _since(3)
    for days_ago in (0, 1, 2):
        _payment(tokens["user_id"], "success", days_ago)
    first = api.call("GET", "/api/admin/transactions/?limit=1", token=tokens["staff"]).data
    cursor = first["next_cursor"]
    assert cursor
    for other in ("/api/admin/files/", "/api/admin/transactions/?status=success", "/api/admin/users/"):
        separator = "&" if "?" in other else "?"
        response = api.call("GET", f"{other}{separator}cursor={cursor}", token=tokens["staff"])
        assert (response.status_code, response.data["error"]["code"]) == (400, "invalid_cursor"), other
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    response = api.call("GET", f"/api/admin/transactions/?cursor={tampered}", token=tokens["staff"])
    assert response.status_code == 400
    own = api.call("GET", f"/api/transactions/?cursor={cursor}", token=tokens["user"])
    assert own.status_code == 400


def test_stats_come_from_counters(api: Api, tokens: dict[str, str], gateway: Sandbox) -> None:
    _pay(api, api.signed_up("payer"))
    stats = api.call("GET", "/api/admin/stats/", token=tokens["staff"]).data
    assert stats["users"] == 4
    assert stats["payments"]["success"] == 1
    assert stats["payments"]["initiated"] == 0
    assert stats["revenue"] == {"BDT": "100.00"}
    assert set(stats["files"]) == {"pending_upload", "processing", "completed", "failed"}


def test_verify_and_reprocess_are_logged_with_the_actor(api: Api, tokens: dict[str, str], gateway: Sandbox) -> None:
    token = api.signed_up("payer")
    initiated = api.call("POST", "/api/initiate-payment/", {}, token).data
    gateway.settle(initiated["transaction_id"], paid=True)
    verified = api.call(
        "POST", f"/api/admin/transactions/{initiated['transaction_id']}/verify/", token=tokens["superuser"]
    )
    assert (verified.status_code, verified.data["status"]) == (200, "success")
    assert api.call("GET", "/api/me/", token=token).data["user"]["has_paid"] is True

    principal = accounts.authenticate(token)
    upload = uploads.request_upload(principal, {"filename": "x.txt", "size": 5})
    from chalicelib import aws
    from chalicelib.config import settings

    item = File.get(upload["file"]["id"])
    aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=item.object_key, Body=b"\x00\x01binary")
    worker.process_object(item.object_key, worker.Message([item.object_key], 1, None))
    assert File.get(item.id).status == "failed"
    not_failed = api.call("POST", f"/api/admin/files/{MISSING}/reprocess/", token=tokens["superuser"])
    assert not_failed.status_code == 404
    requeued = api.call("POST", f"/api/admin/files/{item.id}/reprocess/", token=tokens["superuser"])
    assert (requeued.status_code, requeued.data["status"]) == (202, "processing")
    again = api.call("POST", f"/api/admin/files/{item.id}/reprocess/", token=tokens["superuser"])
    assert again.status_code == 409

    owner = principal.user_id
    feed = api.call("GET", f"/api/admin/activity/?user_id={owner}", token=tokens["staff"]).data["items"]
    by_action = {entry["action"]: entry for entry in feed}
    assert by_action["admin_payment_verify"]["actor_id"] == tokens["superuser_id"]
    assert by_action["admin_file_reprocess"]["actor_id"] == tokens["superuser_id"]


def test_full_journey_writes_activity_in_order(api: Api, gateway: Sandbox) -> None:
    token = api.signed_up("journey")
    _pay(api, token)
    principal = accounts.authenticate(token)
    upload = uploads.request_upload(principal, {"filename": "notes.txt", "size": 11})
    from chalicelib import aws
    from chalicelib.config import settings

    item = File.get(upload["file"]["id"])
    aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=item.object_key, Body=b"hello world")
    worker.process_object(item.object_key, worker.Message([item.object_key], 1, None))
    feed = api.call("GET", "/api/activity/?limit=100", token=token).data["items"]
    assert [entry["action"] for entry in reversed(feed)] == [
        "user_registered",
        "login",
        "payment_initiated",
        "payment_success",
        "file_upload_requested",
        "file_uploaded",
        "file_processed",
    ]


def test_no_scan_guard_fires(aws_resources: dict[str, Any]) -> None:
    with pytest.raises(ScanIssued):
        list(User.scan())
