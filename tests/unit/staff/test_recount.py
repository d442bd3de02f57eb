"""`make recount`: after any mix of concurrent requests the counters equal what the records say."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from chalicelib import payments
from chalicelib.accounts import accounts, tokens
from chalicelib.core import aws, clock, counters, db
from chalicelib.core.config import settings
from chalicelib.core.models import Counter, DailyCounter, File, User
from chalicelib.files import quota, uploads, worker
from chalicelib.staff import stats
from local import recount
from local.sandbox import Sandbox
from tests.aamarpay_browser import press

BASE_URL = "http://testserver"


def _principal(user: User) -> accounts.Principal:
    claims = tokens.Claims(user.id, clock.new_id(), tokens.ACCESS, clock.now() + timedelta(minutes=5))
    return accounts.Principal(user=User.get(user.id, consistent_read=True), claims=claims)


def _upload(principal: accounts.Principal, body: bytes) -> None:
    """Request, store and process one file; its event handled twice at once (redelivery)."""
    answer = uploads.request_upload(principal, {"filename": "notes.txt", "size": max(len(body), 1)})
    item = File.get(answer["file"]["id"])
    aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=item.object_key, Body=body)
    message = worker.Message([item.object_key], receive_count=1, ticket=None)
    _together(*[lambda: worker.process_object(item.object_key, message)] * 2)


def _customer(number: int) -> None:
    """Register, pay (or fail, or cancel) and, once paid, upload a good and an empty file."""
    user = accounts.create_user(f"user{number}", f"user{number}@example.com", "correct horse")
    started = payments.initiate(_principal(user), {}, idempotency_key=None, base_url=BASE_URL)
    button = ("pay", "fail", "cancel")[number % 3]
    hop = press(started["payment_url"], button)
    form = dict(parse_qsl(urlsplit(hop.url).query)) if button == "cancel" else hop.form  # the link carries its token
    kind = {"pay": "success", "fail": "fail", "cancel": "cancel"}[button]
    _together(*[lambda: payments.handle_return(kind, form)] * 2)  # a double-clicked return
    if button == "pay":
        principal = _principal(user)
        _upload(principal, b"one two three")
        _upload(principal, b"")


def _together(*work: Callable[[], Any]) -> None:
    errors: list[BaseException] = []

    def run(job: Callable[[], Any]) -> None:
        try:
            job()
        except BaseException as error:  # re-raised in the test's thread below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def test_concurrent_requests_leave_no_drift(gateway: Sandbox, atomic_dynamodb: None) -> None:
    _together(*[lambda n=n: _customer(n) for n in range(6)])
    assert recount.drift() == []
    counted = stats.values(
        [counters.USERS, counters.WORDS, "payments#success", "payments#failed", "payments#cancelled", "files#completed"]
    )
    assert counted == {
        counters.USERS: 6,
        counters.WORDS: 6,
        "payments#success": 2,
        "payments#failed": 2,
        "payments#cancelled": 2,
        "files#completed": 2,
    }
    today = stats.daily(1)[0]
    assert (today["users"], today["payments_success"], today["revenue"], today["files_failed"]) == (6, 2, "200.00", 2)


def test_drift_is_reported_and_fixed(aws_resources: dict[str, Any], capsys: Any) -> None:
    accounts.create_user("alice", "alice@example.com", "correct horse")
    assert recount.main([]) == 0
    Counter(f"{counters.USERS}#3").update(actions=[Counter.value.add(4)])  # a counter gone wrong
    day = clock.now().date()
    DailyCounter(counters.SCOPE, f"{day.isoformat()}#5").update(actions=[DailyCounter.words.add(-7)])
    found = {d.counter: (d.counted, d.recorded) for d in recount.drift()}
    assert found == {counters.USERS: (5, 1), f"{day.isoformat()} words": (-7, 0)}
    assert recount.main([]) == 1
    assert recount.main(["--fix"]) == 0
    assert recount.drift() == []
    assert "drift users: counted 5, records say 1" in capsys.readouterr().out


def test_quota_usage_is_recounted_from_the_files_and_fixed(atomic_dynamodb: None, aws_resources: Any) -> None:
    user = accounts.create_user("alice", "alice@example.com", "correct horse")
    User(user.id).update(actions=[User.has_paid.set(True)])
    _upload(_principal(user), b"three words here")
    kept = uploads.request_upload(_principal(user), {"filename": "b.txt", "size": 40})
    uploads.delete_for_user(user.id, kept["file"]["id"])
    assert recount.drift() == []
    # A record from before the quota existed: no sums although it holds a file.
    User(user.id).update(actions=[User.files_held.remove(), User.bytes_held.remove()])
    found = {d.counter: (d.counted, d.recorded) for d in recount.drift()}
    assert found == {f"user {user.id} files_held": (0, 1), f"user {user.id} bytes_held": (0, 16)}
    assert recount.main(["--fix"]) == 0
    assert recount.drift() == []
    assert quota.held(User.get(user.id)) == (1, 16)


class Crash(Exception):
    """The process dying right after DynamoDB committed."""


def test_a_crash_right_after_the_commit_leaves_the_stats_exact(aws_resources: dict[str, Any]) -> None:
    events = db._connection().client.meta.events

    def crash(**_: Any) -> None:
        raise Crash

    events.register("after-call.dynamodb.TransactWriteItems", crash)
    try:
        with pytest.raises(Crash):
            accounts.create_user("alice", "alice@example.com", "correct horse")
    finally:
        events.unregister("after-call.dynamodb.TransactWriteItems", crash)
    assert User.by_day.count(clock.now().date().isoformat()) == 1
    assert recount.drift() == []
