"""The admin API: who may do what, filters, day-sharded feeds, cursors, stats, the no-Scan rule."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

import app
from chalicelib.accounts import accounts
from chalicelib.core import activity, aws, clock, counters
from chalicelib.core.config import settings
from chalicelib.core.models import Activity, DailyCounter, File, Payment, User, status_day
from chalicelib.openapi import document as openapi
from chalicelib.payments import settlement
from chalicelib.staff import admin, export, stats
from local.runner import lambda_sqs_event
from local.sandbox import Sandbox
from tests import records
from tests.aamarpay_browser import press
from tests.unit.conftest import ROLES, Api

READS = [
    "/api/admin/users/",
    "/api/admin/transactions/",
    "/api/admin/files/",
    "/api/admin/activity/",
    "/api/admin/stats/",
]
MISSING = "0" * 32


@pytest.fixture
def queue_url(aws_resources: dict[str, Any]) -> str:
    return aws_resources["queues"][settings().upload_queue]


# --- helpers ---------------------------------------------------------------------------


def _status(api: Api, path: str, token: str | None, body: Any = None) -> int:
    method = "POST" if path.endswith(("/reprocess/", "/verify/", "/staff/")) else "GET"
    return api.call(method, path, body, token).status_code


def _stamps(days_ago: float) -> dict[str, str]:
    created_at = clock.iso(clock.now() - timedelta(days=days_ago))
    return {"created_at": created_at, "updated_at": created_at, "day": clock.day_of(created_at)}


def _payment(user_id: str, status: str, days_ago: float = 0) -> Payment:
    made = records.payment(user_id, status, days_ago=days_ago)
    made.save()
    return made


def _file(user_id: str, status: str, days_ago: float = 0) -> File:
    stamps = _stamps(days_ago)
    file_id = clock.new_id()
    item = File(
        file_id,
        user_id=user_id,
        filename="a.txt",
        size=3,
        content_type="text/plain",
        object_key=f"uploads/{user_id}/{file_id}.txt",
        status=status,
        error="broken" if status == "failed" else None,
        status_day=status_day(status, stamps["created_at"]),
        **stamps,
    )
    item.save()
    return item


@contextmanager
def _days_ago(days: int) -> Iterator[None]:
    """Run real code (activity.record, …) as if it were `days` days ago."""
    moment = clock.now() - timedelta(days=days)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: moment)
        yield


def _since(days_ago: int) -> None:
    """Pretend the service started `days_ago` days ago (the oldest day feeds walk back to)."""
    start = (clock.now() - timedelta(days=days_ago)).date().isoformat()
    DailyCounter(counters.SCOPE, f"{start}#0").save()  # the first day's counts: where feeds start


def _walk(api: Api, path: str, token: str, limit: int = 2) -> list[dict[str, Any]]:
    """Every item of a list, page by page, following `next_cursor`."""
    items: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        separator = "&" if "?" in path else "?"
        url = f"{path}{separator}limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        response = api.call("GET", url, token=token)
        assert response.status_code == 200, response.data
        assert len(response.data["items"]) <= limit
        items.extend(response.data["items"])
        cursor = response.data["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("pagination did not end")


def _pay(api: Api, token: str) -> str:
    """Initiate, press Pay on the sandbox page, and deliver its form like the browser would."""
    initiated = api.call("POST", "/api/initiate-payment/", {}, token).data
    hop = press(initiated["payment_url"], "pay")
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}
    answer = api.client.http.post(urlsplit(hop.url).path, headers=headers, body=urlencode(hop.form).encode())
    assert answer.status_code == 200, answer.body
    return initiated["transaction_id"]


def _upload(api: Api, token: str, body: bytes, filename: str = "notes.txt") -> str:
    """Ask for an upload slot and put the object in S3 (S3 then notifies the queue)."""
    answer = api.call("POST", "/api/upload/", {"filename": filename, "size": len(body)}, token)
    assert answer.status_code == 201, answer.data
    item = File.get(answer.data["file"]["id"])
    aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=item.object_key, Body=body)
    return item.id


def _run_worker(api: Api, queue_url: str) -> int:
    """Hand every queued message to the app's SQS handler as Lambda would; returns how many."""
    sqs = aws.client("sqs")
    handled = 0
    while messages := sqs.receive_message(QueueUrl=queue_url, AttributeNames=["All"]).get("Messages", []):
        event = lambda_sqs_event(messages, f"arn:aws:sqs:us-east-1:123456789012:{settings().upload_queue}", "us-east-1")
        api.client.lambda_.invoke("process_upload_events", event)
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        handled += 1
    return handled


def _entries(user_id: str, action: str) -> list[Activity]:
    return [e for e in Activity.query(user_id, scan_index_forward=False) if e.action == action]


# --- who may do what -------------------------------------------------------------------


@pytest.mark.parametrize("path", READS)
def test_reads_are_for_staff_and_superusers(api: Api, tokens: dict[str, str], path: str) -> None:
    assert _status(api, path, None) == 401
    assert _status(api, path, "not-a-token") == 401
    assert _status(api, path, tokens["user"]) == 403
    assert _status(api, path, tokens["staff"]) == 200
    assert _status(api, path, tokens["superuser"]) == 200


@pytest.mark.parametrize(
    "template",
    ["/api/admin/files/{}/reprocess/", "/api/admin/transactions/{}/verify/", "/api/admin/users/{}/staff/"],
)
def test_actions_are_for_superusers_only(api: Api, tokens: dict[str, str], template: str) -> None:
    body = {"is_staff": True}
    for target in (MISSING, "not-an-id", "A" * 32, "0" * 33):
        path = template.format(target)
        assert _status(api, path, None, body) == 401, path
        assert _status(api, path, "not-a-token", body) == 401, path
        assert _status(api, path, tokens["user"], body) == 403, path
        assert _status(api, path, tokens["staff"], body) == 403, path
        response = api.call("POST", path, body, tokens["superuser"])  # allowed, but nothing by that id
        assert (response.status_code, response.data["error"]["code"]) == (404, "not_found"), path


def test_forbidden_answers_have_the_contract_shape(api: Api, tokens: dict[str, str]) -> None:
    read = api.call("GET", "/api/admin/users/", token=tokens["user"])
    act = api.call("POST", f"/api/admin/users/{tokens['user_id']}/staff/", {"is_staff": True}, tokens["staff"])
    for response in (read, act):
        assert response.data["error"]["code"] == "forbidden"
        assert response.data["error"]["message"]


def test_staff_cannot_act_on_real_objects(api: Api, tokens: dict[str, str]) -> None:
    """The 403 comes before any lookup, and nothing changes or is logged."""
    owner = tokens["user_id"]
    payment, item = _payment(owner, "initiated"), _file(owner, "failed")
    for path, body in [
        (f"/api/admin/users/{owner}/staff/", {"is_staff": True}),
        (f"/api/admin/files/{item.id}/reprocess/", None),
        (f"/api/admin/transactions/{payment.transaction_id}/verify/", None),
    ]:
        assert _status(api, path, tokens["staff"], body) == 403, path
    assert User.get(owner).is_staff is False
    assert File.get(item.id).status == "failed"
    assert [e.action for e in Activity.query(owner) if e.action.startswith("admin_")] == []


# --- superuser: staff flag -------------------------------------------------------------


def test_grant_and_revoke_staff_is_logged_with_the_actor(api: Api, tokens: dict[str, str]) -> None:
    target = api.register("carol").data["user"]["id"]
    carol = api.staff_login("carol")["access"]  # a user may enrol a second factor, staff or not
    assert api.call("GET", "/api/admin/users/", token=carol).status_code == 403
    granted = api.call("POST", f"/api/admin/users/{target}/staff/", {"is_staff": True}, tokens["superuser"])
    assert granted.status_code == 200
    assert (granted.data["user"]["id"], granted.data["user"]["is_staff"]) == (target, True)
    assert api.call("GET", "/api/admin/users/", token=carol).status_code == 200  # same token, new role
    assert (
        api.call("POST", f"/api/admin/users/{tokens['user_id']}/staff/", {"is_staff": True}, carol).status_code == 403
    )
    revoked = api.call("POST", f"/api/admin/users/{target}/staff/", {"is_staff": False}, tokens["superuser"])
    assert revoked.data["user"]["is_staff"] is False
    assert User.get(target).is_staff is False
    assert api.call("GET", "/api/admin/users/", token=carol).status_code == 403
    feed = api.call("GET", f"/api/admin/activity/?action=admin_staff_changed&user_id={target}", token=tokens["staff"])
    entries = feed.data["items"]
    assert [(e["metadata"]["is_staff"], e["metadata"]["was_staff"]) for e in entries] == [(False, True), (True, False)]
    assert {(e["actor_id"], e["user_id"]) for e in entries} == {(tokens["superuser_id"], target)}


@pytest.mark.parametrize("body", [{}, {"is_staff": "yes"}, {"is_staff": 1}, {"is_staff": None}, "not json"])
def test_set_staff_validates_its_body(api: Api, tokens: dict[str, str], body: Any) -> None:
    target = api.register("carol").data["user"]["id"]
    response = api.call("POST", f"/api/admin/users/{target}/staff/", body, tokens["superuser"])
    assert response.status_code == 400
    assert User.get(target).is_staff is False
    assert _entries(target, "admin_staff_changed") == []


def test_superuser_cannot_change_self_or_demote_another_superuser(api: Api, tokens: dict[str, str]) -> None:
    me = tokens["superuser_id"]
    for flag in (False, True):
        own = api.call("POST", f"/api/admin/users/{me}/staff/", {"is_staff": flag}, tokens["superuser"])
        assert (own.status_code, own.data["error"]["code"]) == (400, "cannot_change_self")
    other = accounts.create_user("root2", "root2@example.com", "long enough", role="superuser")
    response = api.call("POST", f"/api/admin/users/{other.id}/staff/", {"is_staff": False}, tokens["superuser"])
    assert (response.status_code, response.data["error"]["code"]) == (400, "superuser_is_staff")
    assert User.get(other.id).is_staff is True
    assert _entries(me, "admin_staff_changed") == _entries(other.id, "admin_staff_changed") == []


# --- lists: filters, day-sharded walks, cursors ----------------------------------------

FEEDS = {
    "transactions": (_payment, ("success", "initiated", "failed"), "transaction_id"),
    "files": (_file, ("completed", "pending_upload", "failed"), "id"),
}


@pytest.mark.parametrize("kind", FEEDS)
def test_payment_and_file_feeds_walk_days_newest_first_with_filters(
    api: Api, tokens: dict[str, str], kind: str
) -> None:
    make, (first, second, third), key = FEEDS[kind]
    _since(10)
    alice, bob, staff = tokens["user_id"], tokens["staff_id"], tokens["staff"]
    # Today's two records a second apart: equal timestamps would leave their order to chance.
    made = [make(alice, first, 0), make(bob, second, 1 / 86400), make(alice, third, 2), make(bob, first, 5)]
    made.append(make(alice, second, 9))
    path = f"/api/admin/{kind}/"

    def ids(items: list[Any]) -> list[str]:
        return [item[key] if isinstance(item, dict) else getattr(item, key) for item in items]

    everything = _walk(api, path, staff)
    newest_first = sorted(made, key=lambda record: record.created_at, reverse=True)
    assert ids(everything) == ids(newest_first)
    assert [item["user_id"] for item in everything] == [record.user_id for record in newest_first]
    assert ids(_walk(api, f"{path}?status={first}", staff, limit=1)) == ids([made[0], made[3]])
    assert ids(_walk(api, f"{path}?status={third}", staff, limit=1)) == ids([made[2]])
    assert ids(_walk(api, f"{path}?user_id={alice}", staff)) == ids([made[0], made[2], made[4]])
    assert ids(_walk(api, f"{path}?user_id={alice}&status={second}", staff, limit=1)) == ids([made[4]])
    assert ids(_walk(api, f"{path}?user_id={bob}&status={third}", staff)) == []


def test_admin_views_add_the_owner_and_keep_secrets_out(api: Api, tokens: dict[str, str]) -> None:
    _payment(tokens["user_id"], "failed")
    _file(tokens["user_id"], "failed")
    payment = api.call("GET", "/api/admin/transactions/", token=tokens["staff"]).data["items"][0]
    assert set(payment) >= {"transaction_id", "status", "amount", "currency", "created_at", "user_id"}
    assert "payment_url" not in payment
    item = api.call("GET", "/api/admin/files/?status=failed", token=tokens["staff"]).data["items"][0]
    assert (item["user_id"], item["error"]) == (tokens["user_id"], "broken")
    assert "object_key" not in item
    users = _walk(api, "/api/admin/users/", tokens["staff"])
    assert all("password" not in str(user) for user in users)


def test_users_feed_walks_days_newest_first(api: Api, tokens: dict[str, str]) -> None:
    _since(4)
    stamps = _stamps(3)
    old = User(clock.new_id(), username="old", email="o@example.com", password_hash="x")
    old.created_at, old.day = stamps["created_at"], stamps["day"]
    old.save()
    users = _walk(api, "/api/admin/users/", tokens["staff"], limit=1)
    assert [u["username"] for u in users] == ["superuser", "staff", "user", "old"]
    assert [u["is_staff"] for u in users] == [True, True, False, False]


def test_activity_feed_walks_days_by_action_and_user(api: Api, tokens: dict[str, str]) -> None:
    _since(6)
    alice, bob, staff = tokens["user_id"], tokens["staff_id"], tokens["staff"]
    planted = []
    for user_id, action, days in [
        (alice, "payment_expired", 0),
        (bob, "payment_expired", 1),
        (alice, "logout", 3),
        (alice, "payment_expired", 5),
    ]:
        with _days_ago(days):
            planted.append(activity.record(action, user_id).id)

    def ids(path: str, limit: int = 2) -> list[str]:
        return [entry["id"] for entry in _walk(api, path, staff, limit)]

    assert ids("/api/admin/activity/?action=payment_expired", limit=1) == [planted[0], planted[1], planted[3]]
    assert ids(f"/api/admin/activity/?action=payment_expired&user_id={alice}") == [planted[0], planted[3]]
    assert ids(f"/api/admin/activity/?action=logout&user_id={bob}") == []
    everything = _walk(api, "/api/admin/activity/", staff, limit=3)
    assert [entry["id"] for entry in everything if entry["id"] in planted] == planted
    times = [entry["created_at"] for entry in everything]
    assert times == sorted(times, reverse=True)
    # + each role's registration and login, and the two staff roles' enrolment (`mfa_enabled`)
    assert len(everything) == len(planted) + 2 * len(ROLES) + 2
    alices = _walk(api, f"/api/admin/activity/?user_id={alice}", staff)
    assert [(entry["action"], entry["user_id"]) for entry in alices] == [
        ("payment_expired", alice),
        ("login", alice),
        ("user_registered", alice),
        ("logout", alice),
        ("payment_expired", alice),
    ]


@pytest.mark.parametrize("path", ["/api/admin/transactions/", "/api/admin/files/", "/api/admin/activity/"])
def test_unknown_user_filter_is_an_empty_list(api: Api, tokens: dict[str, str], path: str) -> None:
    _payment(tokens["user_id"], "success")
    _file(tokens["user_id"], "completed")
    response = api.call("GET", f"{path}?user_id={MISSING}", token=tokens["staff"])
    assert (response.status_code, response.data) == (200, {"items": [], "next_cursor": None})


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("/api/admin/transactions/?status=paid", "invalid_filter"),
        ("/api/admin/transactions/?status=completed", "invalid_filter"),  # a file status
        ("/api/admin/transactions/?status=SUCCESS", "invalid_filter"),
        ("/api/admin/files/?status=done", "invalid_filter"),
        ("/api/admin/files/?status=success", "invalid_filter"),  # a payment status
        ("/api/admin/activity/?action=hack", "invalid_filter"),
        ("/api/admin/transactions/?user_id=../../etc", "invalid_filter"),
        ("/api/admin/files/?user_id=" + "A" * 32, "invalid_filter"),
        ("/api/admin/activity/?user_id=" + "0" * 31, "invalid_filter"),
        ("/api/admin/files/?limit=1000", "invalid_limit"),
        ("/api/admin/users/?limit=0", "invalid_limit"),
        ("/api/admin/users/?cursor=garbage", "invalid_cursor"),
        ("/api/admin/activity/?cursor=" + "A" * 40, "invalid_cursor"),
    ],
)
def test_bad_filters_limits_and_cursors_are_400(api: Api, tokens: dict[str, str], query: str, code: str) -> None:
    response = api.call("GET", query, token=tokens["staff"])
    assert (response.status_code, response.data["error"]["code"]) == (400, code)


def test_cursor_from_another_list_or_filter_is_refused(api: Api, tokens: dict[str, str]) -> None:
    _since(3)
    for days_ago in (0, 1, 2):
        _payment(tokens["user_id"], "success", days_ago)
    first = api.call("GET", "/api/admin/transactions/?limit=1", token=tokens["staff"]).data
    cursor = first["next_cursor"]
    assert cursor
    assert (
        api.call("GET", f"/api/admin/transactions/?limit=1&cursor={cursor}", token=tokens["staff"]).status_code == 200
    )
    for other in (
        "/api/admin/files/",
        "/api/admin/transactions/?status=success",
        f"/api/admin/transactions/?user_id={tokens['user_id']}",
        "/api/admin/users/",
        "/api/admin/activity/",
        "/api/transactions/",  # the owner's own list
    ):
        separator = "&" if "?" in other else "?"
        token = tokens["staff" if "/admin/" in other else "user"]
        response = api.call("GET", f"{other}{separator}cursor={cursor}", token=token)
        assert (response.status_code, response.data["error"]["code"]) == (400, "invalid_cursor"), other
    tampered = cursor[:-2] + ("AA" if not cursor.endswith("AA") else "BB")
    response = api.call("GET", f"/api/admin/transactions/?cursor={tampered}", token=tokens["staff"])
    assert (response.status_code, response.data["error"]["code"]) == (400, "invalid_cursor")

    alice, bob = tokens["user_id"], tokens["staff_id"]
    _payment(bob, "success")
    alices = api.call("GET", f"/api/admin/transactions/?user_id={alice}&limit=1", token=tokens["staff"]).data
    replayed = api.call(
        "GET", f"/api/admin/transactions/?user_id={bob}&cursor={alices['next_cursor']}", token=tokens["staff"]
    )
    assert (replayed.status_code, replayed.data["error"]["code"]) == (400, "invalid_cursor")


# --- superuser: verify and reprocess ---------------------------------------------------


def test_verify_settles_with_the_actor_and_logs_every_check(
    api: Api, tokens: dict[str, str], gateway: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settlement, "SEARCH_WINDOW_SECONDS", 0)  # each verify asks (the 10 s window: test_payments)
    token = api.signed_up("payer")
    owner = accounts.authenticate(token).user_id
    tid = api.call("POST", "/api/initiate-payment/", {}, token).data["transaction_id"]
    root, path = tokens["superuser"], f"/api/admin/transactions/{tid}/verify/"

    unpaid = api.call("POST", path, token=root)
    assert (unpaid.status_code, unpaid.data["status"]) == (200, "initiated")
    gateway.set_faults(search_500=True)
    down = api.call("POST", path, token=root)
    assert (down.status_code, down.data["error"]["code"]) == (502, "gateway_error")
    gateway.set_faults(search_500=False)
    gateway.settle(tid, paid=True)
    verified = api.call("POST", path, token=root)
    assert (verified.status_code, verified.data["transaction_id"], verified.data["status"]) == (200, tid, "success")
    assert api.call("GET", "/api/me/", token=token).data["user"]["has_paid"] is True

    checks = _entries(owner, "admin_payment_verify")
    assert [(e.actor_id, e.metadata) for e in reversed(checks)] == [
        (tokens["superuser_id"], {"transaction_id": tid, "status": "initiated"}),
        (tokens["superuser_id"], {"transaction_id": tid, "error": "gateway_error"}),
        (tokens["superuser_id"], {"transaction_id": tid, "status": "success"}),
    ]
    (success,) = _entries(owner, "payment_success")
    assert success.actor_id == tokens["superuser_id"]
    assert api.call("POST", path, token=root).data["status"] == "success"  # verifying again moves nothing
    assert len(_entries(owner, "payment_success")) == 1


def test_reprocess_requeues_a_failed_file_for_the_worker(
    api: Api, tokens: dict[str, str], gateway: Sandbox, queue_url: str
) -> None:
    token = api.signed_up("writer")
    owner = accounts.authenticate(token).user_id
    _pay(api, token)
    file_id = _upload(api, token, b"\x00\x01binary")
    _run_worker(api, queue_url)
    assert File.get(file_id).status == "failed"

    root = tokens["superuser"]
    requeued = api.call("POST", f"/api/admin/files/{file_id}/reprocess/", token=root)
    assert (requeued.status_code, requeued.data["id"], requeued.data["status"]) == (202, file_id, "processing")
    again = api.call("POST", f"/api/admin/files/{file_id}/reprocess/", token=root)
    assert again.status_code == 409  # only a failed file goes back

    item = File.get(file_id)  # the owner fixes the object; the queued reprocess counts it
    aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=item.object_key, Body=b"fixed now ok")
    assert _run_worker(api, queue_url) >= 1
    done = api.call("GET", f"/api/files/{file_id}/", token=token).data
    assert (done["status"], done["word_count"], done["error"]) == ("completed", 3, None)
    assert api.call("POST", f"/api/admin/files/{file_id}/reprocess/", token=root).status_code == 409

    feed = _walk(api, f"/api/admin/activity/?user_id={owner}", tokens["staff"], limit=100)
    tail = [(e["action"], e["actor_id"]) for e in reversed(feed)][-4:]
    assert tail == [
        ("file_uploaded", owner),
        ("file_processing_failed", owner),
        ("admin_file_reprocess", tokens["superuser_id"]),
        ("file_processed", owner),
    ]


# --- stats and the whole journey -------------------------------------------------------


def test_stats_are_zero_on_a_fresh_stack(api: Api, tokens: dict[str, str]) -> None:
    assert api.call("GET", "/api/admin/stats/", token=tokens["staff"]).data == {
        "users": 3,
        "payments": dict.fromkeys(("initiated", "success", "review", "failed", "cancelled", "expired"), 0),
        "revenue": {"BDT": "0.00"},
        "files": dict.fromkeys(("pending_upload", "processing", "completed", "failed", "deleted"), 0),
        "words_counted": 0,
    }


def test_journey_writes_activity_in_order_and_counts_it(
    api: Api, tokens: dict[str, str], gateway: Sandbox, queue_url: str
) -> None:
    """register → login → pay → upload → processed, through the routes and the worker handler."""
    token = api.signed_up("journey")
    owner = accounts.authenticate(token).user_id
    tid = _pay(api, token)
    file_id = _upload(api, token, "hello wörld\n".encode())
    assert _run_worker(api, queue_url) >= 1
    assert api.call("GET", f"/api/files/{file_id}/", token=token).data["word_count"] == 2

    own = api.call("GET", "/api/activity/?limit=100", token=token).data["items"]
    assert [(e["action"], e["actor_id"]) for e in reversed(own)] == [
        ("user_registered", owner),
        ("login", owner),
        ("payment_initiated", owner),
        ("payment_success", owner),
        ("file_upload_requested", owner),
        ("file_uploaded", owner),
        ("file_processed", owner),
    ]
    assert own[3]["metadata"]["transaction_id"] == tid and own[0]["metadata"]["file_id"] == file_id
    staff = tokens["staff"]
    named = [{**e, "username": "journey", "actor_username": "journey"} for e in own]
    assert _walk(api, f"/api/admin/activity/?user_id={owner}", staff, limit=3) == named
    everywhere = [e for e in _walk(api, "/api/admin/activity/", staff, limit=5) if e["user_id"] == owner]
    assert everywhere == named

    assert api.call("GET", "/api/admin/stats/", token=staff).data == {
        "users": 4,
        "payments": {"initiated": 0, "success": 1, "review": 0, "failed": 0, "cancelled": 0, "expired": 0},
        "revenue": {"BDT": "100.00"},
        "files": {"pending_upload": 0, "processing": 0, "completed": 1, "failed": 0, "deleted": 0},
        "words_counted": 2,
    }


def test_documented_filters_match_the_code() -> None:
    """The declared enums (chalicelib/openapi/routes.py repeats them to import nothing heavy) must
    not drift from what the code accepts."""
    document = openapi.document("http://localhost:8000", app.app.declarations)

    def choices(path: str, name: str) -> set[str]:
        (parameter,) = [p for p in document["paths"][path]["get"]["parameters"] if p.get("name") == name]
        return set(parameter["schema"]["enum"])

    assert choices("/api/admin/activity/", "action") == set(activity.ACTIONS)
    assert choices("/api/admin/transactions/", "status") == set(admin.PAYMENT_STATUSES)
    assert choices("/api/admin/files/", "status") == set(admin.FILE_STATUSES)


def test_a_sparse_feed_walks_a_bounded_number_of_days_per_request(
    api: Api, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.core import pagination

    monkeypatch.setattr(pagination, "MAX_DAYS_PER_PAGE", 3)
    _since(10)
    old = _payment(tokens["user_id"], "failed", days_ago=8)
    first = api.call("GET", "/api/admin/transactions/?status=failed", token=tokens["staff"]).data
    assert first["items"] == [] and first["next_cursor"]
    found = _walk(api, "/api/admin/transactions/?status=failed", tokens["staff"])
    assert [p["transaction_id"] for p in found] == [old.transaction_id]


def test_a_feed_reads_its_first_day_only_to_leave_a_day_and_once_per_walk(
    api: Api, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first recorded day costs a Query: today's page never asks it, the page that walks
    past today asks it once, and the cursor carries it to every page after."""
    _since(10)
    today = [_payment(tokens["user_id"], "failed") for _ in range(3)]
    older = [_payment(tokens["user_id"], "failed", days_ago=days) for days in (4, 9)]
    asked: list[date] = []
    feed_start = stats.feed_start
    monkeypatch.setattr(stats, "feed_start", lambda: asked.append(feed_start()) or asked[-1])

    pages = []
    cursor = ""
    while cursor is not None:
        url = "/api/admin/transactions/?limit=2" + (f"&cursor={cursor}" if cursor else "")
        pages.append(api.call("GET", url, token=tokens["staff"]).data)
        cursor = pages[-1]["next_cursor"]
        assert len(asked) == (0 if len(pages) == 1 else 1)
    found = [p["transaction_id"] for page in pages for p in page["items"]]
    assert found == [p.transaction_id for p in [*reversed(today), *older]]


# --- names, search, one user's page, export (issue 16) -----------------------------------


def test_list_items_carry_usernames_from_one_batch_read_per_page(
    api: Api, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for _ in range(3):
        _payment(tokens["user_id"], "failed")
        _file(tokens["staff_id"], "failed")
    api.call("POST", f"/api/admin/users/{tokens['user_id']}/staff/", {"is_staff": True}, tokens["superuser"])
    reads: list[list[str]] = []
    batch_get = User.batch_get
    monkeypatch.setattr(User, "batch_get", lambda keys, **kw: reads.append(list(keys)) or batch_get(keys, **kw))

    payments = api.call("GET", "/api/admin/transactions/", token=tokens["staff"]).data["items"]
    assert {(p["user_id"], p["username"]) for p in payments} == {(tokens["user_id"], "user")}
    files = api.call("GET", "/api/admin/files/", token=tokens["staff"]).data["items"]
    assert {(f["user_id"], f["username"]) for f in files} == {(tokens["staff_id"], "staff")}
    entries = api.call("GET", "/api/admin/activity/?action=admin_staff_changed", token=tokens["staff"]).data["items"]
    assert [(e["username"], e["actor_username"]) for e in entries] == [("user", "superuser")]
    assert reads == [[tokens["user_id"]], [tokens["staff_id"]], sorted([tokens["user_id"], tokens["superuser_id"]])]


def test_a_record_whose_user_is_gone_names_nobody(api: Api, tokens: dict[str, str]) -> None:
    _payment(MISSING, "failed")
    (item,) = api.call("GET", "/api/admin/transactions/", token=tokens["staff"]).data["items"]
    assert (item["user_id"], item["username"]) == (MISSING, None)


def _user_named(username: str, email: str) -> str:
    return accounts.create_user(username, email, "long enough").id


def test_search_finds_users_by_username_or_email_prefix_case_insensitively(api: Api, tokens: dict[str, str]) -> None:
    _user_named("Alice", "alice@example.com")  # matches by username and email: listed once
    _user_named("alfred", "fred@example.com")
    _user_named("bob", "ALbert.bob@example.com")  # by email only
    _user_named("carol", "carol@example.com")
    staff = tokens["staff"]

    def found(q: str, limit: int = 1) -> list[str]:
        return [u["username"] for u in _walk(api, f"/api/admin/users/?{urlencode({'q': q})}", staff, limit)]

    assert found("al") == ["alfred", "Alice", "bob"]  # usernames A→Z first, then email-only matches
    assert found("AL", limit=100) == ["alfred", "Alice", "bob"]
    assert found("a") == ["alfred", "Alice", "bob"]  # a one-character prefix is one whole partition
    assert found("  Ali ") == ["Alice"]
    assert found("fred@") == ["alfred"]
    assert found("c") == ["carol"]
    assert found("zz") == found("@") == found("é") == []
    assert set(found("", limit=100)) >= {"Alice", "alfred", "bob", "carol", "user"}  # blank: every user


def test_search_cursor_is_bound_to_its_query_and_long_queries_are_refused(api: Api, tokens: dict[str, str]) -> None:
    for name in ("ann", "anna", "annie"):
        _user_named(name, f"{name}@example.com")
    first = api.call("GET", "/api/admin/users/?q=an&limit=1", token=tokens["staff"]).data
    assert first["next_cursor"]
    replay = api.call("GET", f"/api/admin/users/?q=ann&limit=1&cursor={first['next_cursor']}", token=tokens["staff"])
    assert (replay.status_code, replay.data["error"]["code"]) == (400, "invalid_cursor")
    too_long = api.call("GET", f"/api/admin/users/?q={'a' * 255}", token=tokens["staff"])
    assert (too_long.status_code, too_long.data["error"]["code"]) == (400, "invalid_filter")


def test_one_users_page_is_for_staff(api: Api, tokens: dict[str, str]) -> None:
    path = f"/api/admin/users/{tokens['user_id']}/"
    answer = api.call("GET", path, token=tokens["staff"])
    assert answer.status_code == 200
    assert answer.data == {"user": accounts.user_view(User.get(tokens["user_id"]))}
    assert api.call("GET", path, token=tokens["user"]).status_code == 403
    assert api.call("GET", path).status_code == 401
    for target in (MISSING, "not-an-id", "A" * 32):
        missing = api.call("GET", f"/api/admin/users/{target}/", token=tokens["staff"])
        assert (missing.status_code, missing.data["error"]["code"]) == (404, "not_found")


def _export(api: Api, token: str, **query: str) -> Any:
    """The export's raw answer (CSV is no JSON); `.data` is the error body when it failed."""
    path = f"/api/admin/transactions/export/?{urlencode(query)}"
    response = api.client.http.get(path, headers={"Authorization": f"Bearer {token}"})
    response.data = None if response.status_code == 200 else json.loads(response.body)
    return response


def _csv_rows(response: Any) -> list[dict[str, str]]:
    import csv
    import io

    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Content-Disposition"].startswith("attachment; filename=")
    text = response.body.decode("utf-8")
    assert text.startswith(",".join(export.HEADER) + "\r\n")
    return list(csv.DictReader(io.StringIO(text)))


def test_export_lists_the_ranges_payments_newest_first_with_names(api: Api, tokens: dict[str, str]) -> None:
    _since(10)
    owner = tokens["user_id"]
    made = [_payment(owner, status, days) for status, days in [("success", 9), ("failed", 5), ("success", 2)]]
    made.append(_payment(owner, "success", 0.5))
    today = clock.now().date()
    window = {"from": (today - timedelta(days=6)).isoformat(), "to": (today - timedelta(days=1)).isoformat()}
    rows = _csv_rows(_export(api, tokens["staff"], **window))
    expected = [p for p in [made[3], made[2], made[1]] if window["from"] <= p.day <= window["to"]]
    assert [r["transaction_id"] for r in rows] == [p.transaction_id for p in expected]
    assert rows[0] == {
        "transaction_id": expected[0].transaction_id,
        "username": "user",
        "user_id": owner,
        "status": expected[0].status,
        "amount": "100.00",
        "currency": "BDT",
        "gateway_transaction_id": "",
        "created_at": expected[0].created_at,
        "updated_at": expected[0].updated_at,
    }
    everything = {"from": (today - timedelta(days=30)).isoformat(), "to": today.isoformat()}
    assert len(_csv_rows(_export(api, tokens["staff"], **everything))) == 4
    failed = _csv_rows(_export(api, tokens["staff"], **everything, status="failed"))
    assert [r["transaction_id"] for r in failed] == [made[1].transaction_id]
    assert _csv_rows(_export(api, tokens["staff"], **everything, status="expired")) == []


def test_export_defuses_spreadsheet_formulas(api: Api, tokens: dict[str, str]) -> None:
    hostile = accounts.create_user("-2+3", "formula@example.com", "long enough")
    payment = _payment(hostile.id, "success")
    payment.update(actions=[Payment.gateway_transaction_id.set('=HYPERLINK("http://evil")')])
    today = clock.now().date().isoformat()
    (row,) = _csv_rows(_export(api, tokens["staff"], **{"from": today, "to": today}))
    assert (row["username"], row["gateway_transaction_id"]) == ("'-2+3", '\'=HYPERLINK("http://evil")')
    assert export.safe_cell("@SUM(A1)") == "'@SUM(A1)" and export.safe_cell("alice") == "alice"


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"from": "2026-01-01"},
        {"from": "2026-01-02", "to": "2026-01-01"},
        {"from": "2025-01-01", "to": "2026-01-02"},  # 367 days
        {"from": "20260101", "to": "2026-01-02"},
        {"from": "2026-02-30", "to": "2026-03-01"},
        {"from": "2026-01-01", "to": "2026-01-02", "status": "paid"},
    ],
)
def test_export_refuses_bad_ranges_and_statuses(api: Api, tokens: dict[str, str], query: dict[str, str]) -> None:
    answer = _export(api, tokens["staff"], **query)
    assert answer.status_code == 400
    assert answer.data["error"]["code"] in {"validation_error", "invalid_filter"}
    assert _export(api, tokens["user"], **{"from": "2026-01-01", "to": "2026-01-01"}).status_code == 403


def test_export_of_a_full_year_is_fine_and_a_huge_one_is_refused(
    api: Api, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    today = clock.now().date()
    year = {"from": (today - timedelta(days=365)).isoformat(), "to": today.isoformat()}
    for _ in range(3):
        _payment(tokens["user_id"], "success")
    assert len(_csv_rows(_export(api, tokens["staff"], **year))) == 3
    monkeypatch.setattr(export, "MAX_ROWS", 2)
    answer = _export(api, tokens["staff"], **year)
    assert (answer.status_code, answer.data["error"]["code"]) == (400, "export_too_large")


def test_daily_figures_end_today_with_the_days_counts(api: Api, tokens: dict[str, str]) -> None:
    answer = api.call("GET", "/api/admin/stats/daily/?days=3", token=tokens["staff"])
    assert answer.status_code == 200
    today = clock.now().date()
    assert answer.data["currency"] == "BDT"
    assert [d["date"] for d in answer.data["days"]] == [(today - timedelta(days=n)).isoformat() for n in (2, 1, 0)]
    assert answer.data["days"][-1]["users"] == 3  # the three role accounts of the fixture
    assert answer.data["days"][0] == {
        "date": (today - timedelta(days=2)).isoformat(),
        "users": 0,
        "payments_success": 0,
        "payments_failed": 0,
        "revenue": "0.00",
        "files_completed": 0,
        "files_failed": 0,
        "words": 0,
    }
    default = api.call("GET", "/api/admin/stats/daily/", token=tokens["staff"]).data["days"]
    assert len(default) == 30 and default[-1]["date"] == today.isoformat()
    assert len(api.call("GET", "/api/admin/stats/daily/?days=366", token=tokens["staff"]).data["days"]) == 366
    assert api.call("GET", "/api/admin/stats/daily/", token=tokens["user"]).status_code == 403


@pytest.mark.parametrize("days", ["0", "367", "abc", "-1", "3.5", "²", "３", " 3"])
def test_daily_figures_refuse_other_day_counts(api: Api, tokens: dict[str, str], days: str) -> None:
    answer = api.call("GET", f"/api/admin/stats/daily/?{urlencode({'days': days})}", token=tokens["staff"])
    assert (answer.status_code, answer.data["error"]["code"]) == (400, "validation_error")


def test_export_queries_only_days_that_can_hold_payments(
    api: Api, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A range reaching into the future or before the first day costs no Query for those days."""
    _since(2)
    made = _payment(tokens["user_id"], "success")
    days: list[str] = []
    query = Payment.by_day.query
    monkeypatch.setattr(Payment.by_day, "query", lambda day, **kw: days.append(day) or query(day, **kw))
    today = clock.now().date()
    window = {"from": (today - timedelta(days=100)).isoformat(), "to": (today + timedelta(days=200)).isoformat()}
    rows = _csv_rows(_export(api, tokens["staff"], **window))
    assert [r["transaction_id"] for r in rows] == [made.transaction_id]
    assert days == [(today - timedelta(days=n)).isoformat() for n in range(3)]


def test_search_pages_never_repeat_or_lose_a_user_while_others_sign_up(
    api: Api, tokens: dict[str, str], atomic_dynamodb: None
) -> None:
    """The cursor is a position in the index, not an offset: sign-ups landing before or after it
    while staff page through shift nothing already listed, and everyone there at the start is found."""
    import threading

    present = {f"ann{n:02d}" for n in range(0, 20, 2)}
    for name in present:
        _user_named(name, f"{name}@example.com")
    stop = threading.Event()

    def sign_ups() -> None:
        for n in range(1, 20, 2):  # interleave between the listed names, and by email too
            if stop.is_set():
                return
            _user_named(f"ann{n:02d}", f"ann{n:02d}@example.com")
            _user_named(f"zed{n:02d}", f"ANN-{n:02d}@example.com")

    writer = threading.Thread(target=sign_ups)
    writer.start()
    try:
        listed = [u["username"] for u in _walk(api, "/api/admin/users/?q=ANN", tokens["staff"], limit=3)]
    finally:
        stop.set()
        writer.join()
    assert len(listed) == len(set(listed))
    assert present <= set(listed)
