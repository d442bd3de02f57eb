"""Every route and the worker within its written budget of AWS round trips.

Each call to DynamoDB, S3 or SQS is a network round trip on Lambda, paid on every request.
The calls are counted where every client sends them (`botocore.client.BaseClient._make_api_call`,
as `tests/scan_guard.py` wraps it) and compared with docs/performance.md's "AWS calls per request" table,
the one written source of the budgets: a route over budget, or one the table does not list,
fails. (The gateway's HTTP calls are not AWS calls; the payment tests count those.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import botocore.client
import pytest

from chalicelib import payments
from chalicelib.accounts import accounts, totp
from chalicelib.core import aws
from chalicelib.core.config import settings
from chalicelib.core.models import File, Payment
from chalicelib.files import worker
from chalicelib.payments import aamarpay
from local.sandbox import Sandbox
from tests import mailbox
from tests.aamarpay_browser import GatewayReturn, press
from tests.passkey_authenticator import SoftAuthenticator
from tests.unit.conftest import Api

PERFORMANCE = Path(__file__).resolve().parents[2] / "docs" / "performance.md"
ROW = re.compile(r"^\| `(?P<name>[^`]+)` \| (?P<budget>\d+) \|")


def budgets() -> dict[str, int]:
    """The table's rows (`| \\`request\\` | budget | floor | what |`) in its section, up to the next one."""
    text = PERFORMANCE.read_text(encoding="utf-8").split("\n## AWS calls per request\n", 1)[1].split("\n## ", 1)[0]
    return {m["name"]: int(m["budget"]) for line in text.splitlines() if (m := ROW.match(line))}


class Calls:
    """AWS operations sent, by the request being measured."""

    def __init__(self) -> None:
        self.measured: dict[str, list[str]] = {}
        self.current: list[str] | None = None

    @contextmanager
    def of(self, name: str) -> Iterator[None]:
        assert name not in self.measured, f"{name} measured twice"
        self.current = self.measured[name] = []
        try:
            yield
        finally:
            self.current = None


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, aws_resources: dict[str, Any]) -> Calls:
    counter = Calls()
    send = botocore.client.BaseClient._make_api_call

    def counting(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        if counter.current is not None:
            counter.current.append(f"{client.meta.service_model.service_name}:{operation_name}")
        return send(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return counter


def _deliver(api: Api, hop: GatewayReturn) -> Any:
    parts = urlsplit(hop.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if hop.method == "GET":
        return api.client.http.get(path, headers={"Accept": "text/html"})
    headers = {"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}
    return api.client.http.post(path, headers=headers, body=urlencode(hop.form).encode())


def _announcement(key: str) -> list[dict[str, Any]]:
    """The SQS records Lambda hands the worker for one S3 `ObjectCreated` event."""
    event = {
        "eventName": "ObjectCreated:Post",
        "s3": {"bucket": {"name": settings().upload_bucket}, "object": {"key": key}},
    }
    body = json.dumps({"Records": [event]})
    return [{"messageId": "m-1", "body": body, "attributes": {"ApproximateReceiveCount": "1"}}]


@pytest.fixture(autouse=True)
def mail_outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))


def test_every_route_within_its_budget(api: Api, gateway: Sandbox, calls: Calls, aws_resources: dict[str, Any]) -> None:
    accounts.create_user("root", "root@example.com", "correct horse", role="superuser")
    root = api.staff_login("root")["access"]

    api.call("POST", "/api/password/forgot/", {"email": "warm@example.com"})
    mailbox.delete(mailbox.queued())  # the relay's first batch in a container: + GetQueueUrl
    with calls.of("POST /api/register/"):
        assert api.register("alice").status_code == 201
    relay = mailbox.relay_poller()
    relay_mail = relay.handler

    def measured_relay(event: dict[str, Any], context: Any) -> Any:  # the function's calls, not the mapping's
        with calls.of("mail relay, per batch of up to 10 jobs"):
            return relay_mail(event, context)

    relay.handler = measured_relay
    try:
        relay.drain()
    finally:
        relay.handler = relay_mail
    [job] = mailbox.queued()
    with calls.of("mail worker, a verification email"):
        mailbox.invoke(api.client, job)
    mailbox.delete([job])
    [letter] = mailbox.outbox()
    with calls.of("POST /api/email/verify/"):
        answer = api.call("POST", "/api/email/verify/", {"token": mailbox.links(letter, "verify")[0]})
        assert answer.status_code == 200, answer.data
    with calls.of("POST /api/login/"):
        tokens = api.login("alice")
    with calls.of("POST /api/login/ (wrong password)"):
        assert api.call("POST", "/api/login/", {"username": "alice", "password": "wrong one"}).status_code == 401
    token = tokens["access"]
    with calls.of("POST /api/refresh/"):
        assert api.call("POST", "/api/refresh/", {"refresh": tokens["refresh"]}).status_code == 200
    with calls.of("GET /api/me/"):
        assert api.call("GET", "/api/me/", token=token).status_code == 200
    with calls.of("GET /api/health/"):
        assert api.call("GET", "/api/health/").status_code == 200

    unverified = api.signed_up("verifier")
    with calls.of("POST /api/email/verify/resend/"):
        assert api.call("POST", "/api/email/verify/resend/", token=unverified).status_code == 202
    mailbox.delete(mailbox.queued())
    with calls.of("POST /api/password/forgot/"):
        assert api.call("POST", "/api/password/forgot/", {"email": "alice@example.com"}).status_code == 202
    [job] = mailbox.queued()
    with calls.of("mail worker, a reset email"):
        mailbox.invoke(api.client, job)
    mailbox.delete([job])
    [letter] = [m for m in mailbox.outbox() if mailbox.links(m)]
    with calls.of("POST /api/password/reset/"):
        answer = api.call(
            "POST", "/api/password/reset/", {"token": mailbox.links(letter)[0], "new_password": "new horse!"}
        )
        assert answer.status_code == 200
    tokens = answer.data
    token = tokens["access"]
    mailbox.delete(mailbox.queued())

    with calls.of("POST /api/initiate-payment/"):
        started = api.call("POST", "/api/initiate-payment/", {}, token)
    assert started.status_code == 201, started.data
    hop = press(started.data["payment_url"], "pay")
    with calls.of("POST /api/payment/success/"):
        assert _deliver(api, hop).status_code == 303
    with calls.of("POST /api/payment/success/ (replayed)"):
        _deliver(api, hop)
    other = api.signed_up("bob")
    failing = api.call("POST", "/api/initiate-payment/", {}, other).data
    with calls.of("POST /api/payment/fail/"):
        _deliver(api, press(failing["payment_url"], "fail"))
    cancelling = api.call("POST", "/api/initiate-payment/", {}, api.signed_up("carol")).data
    with calls.of("GET /api/payment/cancel/"):
        _deliver(api, press(cancelling["payment_url"], "cancel"))
    with calls.of("GET /api/transactions/"):
        assert api.call("GET", "/api/transactions/", token=token).status_code == 200
    with calls.of("GET /api/transactions/{id}/"):
        path = f"/api/transactions/{started.data['transaction_id']}/"
        assert api.call("GET", path, token=token).status_code == 200

    with calls.of("POST /api/upload/"):
        upload = api.call("POST", "/api/upload/", {"filename": "notes.txt", "size": 14}, token)
    assert upload.status_code == 201, upload.data
    item = File.get(upload.data["file"]["id"])
    aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=item.object_key, Body=b"one two three")
    with calls.of("worker, per file"):
        worker.handle_records(_announcement(item.object_key))
    assert File.get(item.id).status == "completed"
    aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=item.object_key, Body=b"a second POST")
    with calls.of("worker, a later POST's stray version"):
        worker.handle_records(_announcement(item.object_key))
    assert calls.measured["worker, a later POST's stray version"][-1] == "s3:DeleteObject"
    with calls.of("GET /api/files/"):
        assert api.call("GET", "/api/files/", token=token).status_code == 200
    with calls.of("GET /api/files/{id}/"):
        assert api.call("GET", f"/api/files/{item.id}/", token=token).status_code == 200
    with calls.of("GET /api/activity/"):
        assert api.call("GET", "/api/activity/", token=token).status_code == 200

    _measure_passkeys(api, calls)

    for route in ("users", "transactions", "files", "activity", "stats"):
        with calls.of(f"GET /api/admin/{route}/"):
            assert api.call("GET", f"/api/admin/{route}/", token=root).status_code == 200
    for name in ("more.txt", "most.txt"):  # three files: the second page of one is not the last
        assert api.call("POST", "/api/upload/", {"filename": name, "size": 4}, token).status_code == 201
    for route in ("users", "transactions", "files", "activity"):  # today's records fill the page
        with calls.of(f"GET /api/admin/{route}/?limit=1"):
            first = api.call("GET", f"/api/admin/{route}/?limit=1", token=root)
        assert first.status_code == 200 and first.data["next_cursor"], (route, first.data)
        with calls.of(f"GET /api/admin/{route}/ (next page)"):
            cursor = first.data["next_cursor"]
            assert api.call("GET", f"/api/admin/{route}/?limit=1&cursor={cursor}", token=root).status_code == 200
    user_id = api.call("GET", "/api/me/", token=other).data["user"]["id"]
    with calls.of("POST /api/admin/users/{id}/staff/"):
        assert api.call("POST", f"/api/admin/users/{user_id}/staff/", {"is_staff": True}, root).status_code == 200
    held = []
    for name in ("grace", "heidi"):
        risky = api.call("POST", "/api/initiate-payment/", {}, api.signed_up(name)).data
        hop = press(risky["payment_url"], "pay_risky")
        if not held:
            with calls.of("POST /api/payment/success/ (risky card: review)"):
                assert _deliver(api, hop).status_code == 303
        else:
            _deliver(api, hop)
        held.append(risky["transaction_id"])
    for (decision, body), tid in zip((("approve", None), ("reject", {"note": "stolen card"})), held, strict=True):
        with calls.of(f"POST /api/admin/transactions/{{id}}/{decision}/"):
            decided = api.call("POST", f"/api/admin/transactions/{tid}/{decision}/", body, root)
        assert decided.status_code == 200, decided.data

    otp_user = api.signed_up("frank")
    with calls.of("POST /api/mfa/setup/"):
        secret = api.call("POST", "/api/mfa/setup/", {}, otp_user).data["secret"]
    with calls.of("POST /api/mfa/confirm/"):
        confirmed = api.call("POST", "/api/mfa/confirm/", {"code": totp.code_at(secret, totp.current_step())}, otp_user)
    assert confirmed.status_code == 200
    with calls.of("POST /api/login/ (second factor on)"):
        challenge = api.login("frank")["mfa_token"]
    with calls.of("POST /api/login/mfa/"):
        body = {"mfa_token": challenge, "code": confirmed.data["recovery_codes"][0]}
        assert api.call("POST", "/api/login/mfa/", body).status_code == 200
    with calls.of("POST /api/mfa/disable/"):
        body = {"password": "correct horse", "code": confirmed.data["recovery_codes"][1]}
        assert api.call("POST", "/api/mfa/disable/", body, confirmed.data["access"]).status_code == 204

    paid_late = api.call("POST", "/api/initiate-payment/", {}, api.signed_up("dave")).data
    press(paid_late["payment_url"], "pay")  # the customer pays and closes the tab: no return
    payment = Payment.get(paid_late["transaction_id"])
    answer = aamarpay.client().search(payment.transaction_id)
    with calls.of("reconciler, per payment settled"):
        assert payments.settle(payment, answer).moved  # plus one Query per day the run walks
    with calls.of("POST /api/logout/"):
        assert api.call("POST", "/api/logout/", {"refresh": tokens["refresh"]}, token).status_code in (200, 204)

    leaver = api.signed_up("erin")
    paid_hop = press(api.call("POST", "/api/initiate-payment/", {}, leaver).data["payment_url"], "pay")
    assert _deliver(api, paid_hop).status_code == 303
    kept = api.call("POST", "/api/upload/", {"filename": "mine.txt", "size": 13}, leaver).data["file"]
    kept_item = File.get(kept["id"])
    aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=kept_item.object_key, Body=b"one two three")
    worker.handle_records(_announcement(kept_item.object_key))
    with calls.of("GET /api/me/export/"):
        assert api.call("GET", "/api/me/export/", token=leaver).status_code == 200
    with calls.of("DELETE /api/me/ (one payment, one file)"):
        assert api.call("DELETE", "/api/me/", {"password": "correct horse"}, leaver).status_code == 204

    written = budgets()
    assert set(written) == set(calls.measured), "the table lists exactly the requests measured here"
    report = {name: len(sent) for name, sent in calls.measured.items()}
    over = {
        name: (report[name], written.get(name), calls.measured[name])
        for name in report
        if report[name] > written.get(name, -1)
    }
    assert not over, f"over budget (sent, budget, calls): {over}"


def _measure_passkeys(api: Api, calls: Calls) -> None:
    """Registration, sign-in both ways, the list and a removal, for an account of its own."""
    token = api.signed_up("pat")
    authenticator = SoftAuthenticator()

    def post(path: str, body: dict[str, Any] | None = None, bearer: str | None = None) -> Any:
        answer = api.call("POST", path, body or {}, bearer)
        assert answer.status_code in (200, 201), answer.data
        return answer.data

    with calls.of("POST /api/passkeys/register/options/"):
        options = post("/api/passkeys/register/options/", bearer=token)
    with calls.of("POST /api/passkeys/"):
        post("/api/passkeys/", {"credential": authenticator.create(options), "name": "Laptop"}, token)
    with calls.of("GET /api/passkeys/"):
        (item,) = api.call("GET", "/api/passkeys/", token=token).data["items"]
    with calls.of("POST /api/login/passkey/options/"):
        discoverable = post("/api/login/passkey/options/")
    with calls.of("POST /api/login/passkey/"):
        post("/api/login/passkey/", {"credential": authenticator.get(discoverable)})
    with calls.of("POST /api/login/passkey/options/ (a username)"):
        named = post("/api/login/passkey/options/", {"username": "pat"})
    post("/api/login/passkey/", {"credential": authenticator.get(named)})
    with calls.of("DELETE /api/passkeys/{id}/"):
        assert api.call("DELETE", f"/api/passkeys/{item['id']}/", token=token).status_code == 204
