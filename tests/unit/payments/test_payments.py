"""Payments: the return form is a hint, the search API the only authority, success final.

Runs against moto (the `api`/`aws_resources` fixtures) and the aamarPay sandbox emulator on a
free port, with its fault switches for timeouts, 5xx, garbage and mismatching answers.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from chalicelib import payments
from chalicelib.accounts import accounts
from chalicelib.core import activity, clock, counters, db, errors
from chalicelib.core.config import app_secrets, settings
from chalicelib.core.models import ALL_MODELS, Activity, Claim, Payment, User
from chalicelib.payments import aamarpay, initiation, settlement
from chalicelib.staff import stats
from local.sandbox import Sandbox
from tests.aamarpay_browser import GatewayReturn, press
from tests.unit.conftest import Api

SUCCESS_URL = "http://testserver/api/payment/success/"
FAIL_URL = "http://testserver/api/payment/fail/"
CANCEL_URL = "http://testserver/api/payment/cancel/"


# --- fixtures ----------------------------------------------------------------------------


# Each return asks the gateway (the 10 s window has its own tests, which set it).
pytestmark = pytest.mark.usefixtures("every_return_is_searched")


@pytest.fixture
def gateway_calls(gateway: Sandbox, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every HTTP exchange our client has with the gateway ("GET /api/v1/trxcheck/request.php")."""
    calls: list[str] = []
    client = aamarpay.client()
    send = client._send

    def counting(method: str, path: str, **kwargs: Any) -> Any:
        calls.append(f"{method} {path}")
        return send(method, path, **kwargs)

    monkeypatch.setattr(client, "_send", counting)
    return calls


@pytest.fixture
def dynamodb_calls(aws_resources: dict[str, Any]) -> Iterator[list[str]]:
    """DynamoDB operations sent, via botocore's `before-call` event on every pynamodb client."""
    calls: list[str] = []

    def hook(model: Any, **_: Any) -> None:
        calls.append(model.name)

    connections = [db._connection(), *(model._get_connection().connection for model in ALL_MODELS)]
    clients = {id(connection.client): connection.client for connection in connections}
    for client in clients.values():
        client.meta.events.register("before-call.dynamodb", hook)
    yield calls
    for client in clients.values():
        client.meta.events.unregister("before-call.dynamodb", hook)


# --- helpers -----------------------------------------------------------------------------


def _initiate(api: Api, token: str, body: Any = None, **headers: str) -> Any:
    return api.call("POST", "/api/initiate-payment/", body if body is not None else {}, token, **headers)


def _started(api: Api, username: str = "alice") -> tuple[str, dict[str, Any]]:
    """A signed-up user with one initiated payment: (access token, 201 body)."""
    token = api.signed_up(username)
    response = _initiate(api, token)
    assert response.status_code == 201, response.data
    return token, response.data


def _deliver(api: Api, hop: GatewayReturn, *, json_answer: bool = False) -> Any:
    """What the browser does with the sandbox's answer, against the in-process app."""
    parts = urlsplit(hop.url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {"Accept": "application/json"} if json_answer else {"Accept": "text/html"}
    if hop.method == "GET":
        response = api.client.http.get(path, headers=headers)
    else:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = api.client.http.post(path, headers=headers, body=urlencode(hop.form).encode())
    response.data = _json(response)
    return response


def _json(response: Any) -> Any:
    return json.loads(response.body) if response.body else None


def _forged(kind: str, transaction_id: str, **overrides: str) -> GatewayReturn:
    """A hand-made return form claiming a successful payment (anyone can POST this)."""
    form = {
        "pay_status": "Successful",
        "status_code": "2",
        "mer_txnid": transaction_id,
        "pg_txnid": "AAM1604470136103451",
        "store_id": app_secrets().aamarpay_store_id,
        "amount": "100.00",
        "currency": "BDT",
        "cus_name": "mallory",
        "cus_email": "mallory@example.com",
        **overrides,
    }
    return GatewayReturn("POST", {"success": SUCCESS_URL, "fail": FAIL_URL}[kind], form)


def _cancel(transaction_id: str, gateway: Sandbox | None = None) -> GatewayReturn:
    """The customer's cancel link (the one we handed the gateway), or without a gateway one naming only the id."""
    if gateway is not None:
        return GatewayReturn("GET", gateway.transaction(transaction_id).fields["cancel_url"])
    return GatewayReturn("GET", f"{CANCEL_URL}?{urlencode({'transaction_id': transaction_id})}")


def _payment(transaction_id: str) -> Payment:
    return Payment.get(transaction_id, consistent_read=True)


def _user(username: str) -> User:
    return next(u for u in User.by_day.query(clock.now().date().isoformat()) if u.username == username)


def _actions(user_id: str, action: str) -> list[Activity]:
    return [a for a in Activity.query(user_id, consistent_read=True) if a.action == action]


def _rejections() -> list[Activity]:
    today = clock.now().date().isoformat()
    return list(Activity.by_action_day.query(f"payment_callback_rejected#{today}"))


def _counters() -> dict[str, Any]:
    names = [
        counters.status_key("payments", s) for s in ("initiated", "success", "review", "failed", "cancelled", "expired")
    ]
    return stats.values([*names, "revenue#BDT"])


def _dashboard_params(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 303, response.body
    location = response.headers["Location"]
    assert location.startswith("http://testserver/dashboard/?")
    return parse_qs(urlsplit(location).query, keep_blank_values=True)


@contextmanager
def _clock_shifted(monkeypatch: pytest.MonkeyPatch, seconds: float) -> Iterator[None]:
    """Everything created inside happened `seconds` ago."""
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() - timedelta(seconds=seconds))
    try:
        yield
    finally:
        monkeypatch.setattr(clock, "now", real_now)


def _force_status(transaction_id: str, status: str) -> None:
    """Test setup: put a payment straight into a state without going through the app."""
    payment = _payment(transaction_id)
    payment.update(actions=[Payment.status.set(status), Payment.status_day.set(f"{status}#{payment.created_at[:10]}")])


# --- initiation --------------------------------------------------------------------------


def test_initiate_writes_the_record_before_calling_the_gateway(
    api: Api, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = aamarpay.client()
    initiate = client.initiate
    seen: dict[str, Any] = {}

    def checking(**kwargs: Any) -> str:
        seen["status_at_call"] = _payment(kwargs["tran_id"]).status
        seen.update(kwargs)
        return initiate(**kwargs)

    monkeypatch.setattr(client, "initiate", checking)
    token = api.signed_up("alice")
    response = _initiate(api, token)

    assert response.status_code == 201, response.data
    body = response.data
    assert set(body) == {"transaction_id", "payment_url", "status", "amount", "currency"}
    assert (body["status"], body["amount"], body["currency"]) == ("initiated", "100.00", "BDT")
    tid = body["transaction_id"]
    assert len(tid) == 32 and int(tid, 16) >= 0
    assert seen["status_at_call"] == "initiated"
    assert seen["success_url"] == SUCCESS_URL
    assert seen["fail_url"] == FAIL_URL
    cancel = urlsplit(seen["cancel_url"])
    assert f"{cancel.scheme}://{cancel.netloc}{cancel.path}" == CANCEL_URL
    token = parse_qs(cancel.query)["token"][0]
    assert parse_qs(cancel.query)["transaction_id"] == [tid] and len(token) >= 43  # 256 random bits
    assert _payment(tid).cancel_token_hash not in (None, token)  # stored hashed
    assert str(seen["amount"]) == "100.00"

    record = _payment(tid)
    assert record.payment_url == body["payment_url"]
    assert record.user_id == _user("alice").id
    assert record.status_day == f"initiated#{record.created_at[:10]}"
    assert body["payment_url"].startswith(f"{aamarpay.client().base_url}/paynow.php?track=AAM")
    assert _actions(record.user_id, "payment_initiated")[0].metadata["transaction_id"] == tid
    assert _counters()["payments#initiated"] == 1


def test_customer_identity_comes_from_the_account_never_the_body(api: Api, gateway: Sandbox) -> None:
    token = api.signed_up("alice")
    body = {
        "cus_name": "Mallory",
        "cus_email": "mallory@example.com",
        "cus_phone": "+880 1700-000000",
        "cus_add1": " House 1, Road 2 ",
        "cus_city": "Dhaka",
    }
    response = _initiate(api, token, body)
    assert response.status_code == 201, response.data
    sent = gateway.transaction(response.data["transaction_id"]).fields
    assert (sent["cus_name"], sent["cus_email"]) == ("alice", "alice@example.com")
    assert (sent["cus_phone"], sent["cus_add1"], sent["cus_city"]) == ("+880 1700-000000", "House 1, Road 2", "Dhaka")
    assert sent["cus_country"] == "Bangladesh"  # the client's default when none is given
    assert sent["success_url"] == SUCCESS_URL


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"cus_phone": 1700000000}, "cus_phone"),
        ({"cus_phone": "call me maybe"}, "cus_phone"),
        ({"cus_phone": "1" * 33}, "cus_phone"),
        ({"cus_add1": "x" * 201}, "cus_add1"),
        ({"cus_city": ["Dhaka"]}, "cus_city"),
        ({"cus_country": "x" * 101}, "cus_country"),
    ],
)
def test_initiate_rejects_bad_customer_fields_before_any_write(
    api: Api, gateway: Sandbox, gateway_calls: list[str], body: dict[str, Any], field: str
) -> None:
    token = api.signed_up("alice")
    response = _initiate(api, token, body)
    assert (response.status_code, response.data["error"]["code"]) == (400, "validation_error")
    assert field in response.data["error"]["details"]
    assert list(Payment.by_user.query(_user("alice").id)) == []
    assert gateway_calls == []


@pytest.mark.parametrize("key", ["", "k" * 129, "tab\tkey", "ключ"])
def test_invalid_idempotency_keys_are_refused(api: Api, gateway: Sandbox, key: str) -> None:
    token = api.signed_up("alice")
    response = _initiate(api, token, **{"Idempotency-Key": key})
    assert (response.status_code, response.data["error"]["code"]) == (400, "validation_error")
    assert "Idempotency-Key" in response.data["error"]["details"]


def test_idempotency_key_replay_returns_the_same_payment(api: Api, gateway: Sandbox, gateway_calls: list[str]) -> None:
    alice = api.signed_up("alice")
    first = _initiate(api, alice, **{"Idempotency-Key": "order-1"})
    again = _initiate(api, alice, **{"Idempotency-Key": "order-1"})
    other_key = _initiate(api, alice, **{"Idempotency-Key": "order-2"})
    bob_same_key = _initiate(api, api.signed_up("bob"), **{"Idempotency-Key": "order-1"})

    assert first.status_code == again.status_code == 201
    assert again.data == first.data
    assert other_key.data["transaction_id"] != first.data["transaction_id"]
    assert bob_same_key.data["transaction_id"] not in (first.data["transaction_id"], other_key.data["transaction_id"])
    assert len(list(Payment.by_user.query(_user("alice").id))) == 2
    assert gateway_calls.count("POST /jsonpost.php") == 3
    assert Claim.get(f"idem#{_user('alice').id}#order-1").owner_id == first.data["transaction_id"]


def test_every_payment_answer_keeps_its_fields_in_the_contracts_order(api: Api, gateway: Sandbox) -> None:
    """One view builds them all (`payments.payment_view`); the bytes on the wire stay as they were."""
    token = api.signed_up("alice")
    started = _initiate(api, token, **{"Idempotency-Key": "order-1"})
    replayed = _initiate(api, token, **{"Idempotency-Key": "order-1"})
    tid = started.data["transaction_id"]
    record = api.call("GET", f"/api/transactions/{tid}/", token=token)
    listed = api.call("GET", "/api/transactions/", token=token)

    initiation = ["transaction_id", "payment_url", "status", "amount", "currency"]
    payment = ["transaction_id", "status", "amount", "currency", "gateway_transaction_id", "created_at", "updated_at"]
    assert list(json.loads(started.body)) == list(json.loads(replayed.body)) == initiation
    assert list(json.loads(record.body)) == payment
    assert [list(item) for item in json.loads(listed.body)["items"]] == [payment]


def test_concurrent_requests_with_one_idempotency_key_create_one_payment(
    api: Api, gateway: Sandbox, atomic_dynamodb: None
) -> None:
    api.signed_up("alice")
    principal = accounts.Principal(user=_user("alice"), claims=None)  # type: ignore[arg-type]
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            body = payments.initiate(principal, {}, idempotency_key="same", base_url="http://testserver")
            outcomes.append(body["transaction_id"])
        except errors.ApiError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    created = list(Payment.by_user.query(principal.user_id))
    assert len(created) == 1
    assert set(outcomes) <= {created[0].transaction_id, "idempotency_key_in_use"}
    assert created[0].transaction_id in outcomes
    assert gateway.transaction(created[0].transaction_id) is not None  # exactly one gateway-side payment too


def test_already_paid_is_409_but_the_paying_key_still_replays(api: Api, gateway: Sandbox) -> None:
    token = api.signed_up("alice")
    first = _initiate(api, token, **{"Idempotency-Key": "pay-once"})
    gateway.settle(first.data["transaction_id"], paid=True)
    assert _deliver(api, _forged("success", first.data["transaction_id"])).status_code == 303

    refused = _initiate(api, token)
    assert (refused.status_code, refused.data["error"]["code"]) == (409, "already_paid")
    refused_new_key = _initiate(api, token, **{"Idempotency-Key": "another"})
    assert refused_new_key.status_code == 409
    replay = _initiate(api, token, **{"Idempotency-Key": "pay-once"})
    assert replay.status_code == 201
    assert replay.data == {**first.data, "status": "success"}


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("initiate_500", "gateway answered HTTP 500"), ("initiate_garbage", "gateway answered non-JSON (text/html)")],
)
def test_gateway_error_at_initiation_is_502_and_recorded(api: Api, gateway: Sandbox, fault: str, reason: str) -> None:
    gateway.set_faults(**{fault: True})
    token = api.signed_up("alice")
    response = _initiate(api, token, **{"Idempotency-Key": "k1"})
    assert (response.status_code, response.data["error"]["code"]) == (502, "gateway_error")
    assert reason in response.data["error"]["message"]

    (record,) = Payment.by_user.query(_user("alice").id)
    assert (record.status, record.failure_reason, record.payment_url) == ("failed", reason, None)
    assert record.status_day.startswith("failed#")
    assert _actions(record.user_id, "payment_failed")[0].metadata["via"] == "initiation"
    assert _counters()["payments#failed"] == 1 and _counters()["payments#initiated"] == 0

    gateway.set_faults(**{fault: False})
    replay = _initiate(api, token, **{"Idempotency-Key": "k1"})
    assert (replay.status_code, replay.data["error"]["message"]) == (502, response.data["error"]["message"])
    assert _initiate(api, token).status_code == 201  # a new attempt works


def test_gateway_refusal_message_says_why(api: Api, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    client = aamarpay.client()
    monkeypatch.setattr(client, "store_id", "not-our-store")
    response = _initiate(api, api.signed_up("alice"))
    assert (response.status_code, response.data["error"]["code"]) == (502, "gateway_error")
    assert "Invalid Store ID" in response.data["error"]["message"]
    assert app_secrets().aamarpay_signature_key not in response.body.decode()


def test_gateway_timeout_at_initiation_is_504_and_the_reconciler_settles_it(
    api: Api, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway.set_faults(initiate_timeout=1)
    token = api.signed_up("alice")
    response = _initiate(api, token, **{"Idempotency-Key": "slow"})
    assert (response.status_code, response.data["error"]["code"]) == (504, "gateway_timeout")

    (record,) = Payment.by_user.query(_user("alice").id)
    assert record.status == "initiated"  # the gateway may have created it: keep it
    assert record.failure_reason.startswith("gateway timeout")
    assert _initiate(api, token, **{"Idempotency-Key": "slow"}).status_code == 504  # same answer on replay

    _wait_for(lambda: gateway.transaction(record.transaction_id) is not None)  # created after the delay
    gateway.settle(record.transaction_id, paid=True)  # the customer paid some other way
    monkeypatch.setenv("PAYMENT_RECHECK_AFTER_SECONDS", "0")
    settings.cache_clear()
    with _clock_shifted(monkeypatch, -200):  # its first check was due 2 minutes after creation
        summary = payments.reconcile_pending()
    assert summary["success"] == 1
    settled = _payment(record.transaction_id)
    assert (settled.status, settled.failure_reason) == ("success", None)
    assert _user("alice").has_paid


def _wait_for(condition: Callable[[], bool], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


# --- returns: the happy paths ------------------------------------------------------------


def test_paying_on_the_sandbox_page_settles_and_redirects(api: Api, gateway: Sandbox) -> None:
    _, started = _started(api)
    tid = started["transaction_id"]
    hop = press(started["payment_url"], "pay")
    assert (hop.method, hop.url, hop.form["mer_txnid"]) == ("POST", SUCCESS_URL, tid)

    response = _deliver(api, hop)
    assert _dashboard_params(response) == {"payment": ["success"], "transaction_id": [tid]}
    record = _payment(tid)
    assert record.status == "success"
    assert record.gateway_transaction_id == hop.form["pg_txnid"]
    assert record.status_day == f"success#{record.created_at[:10]}"
    assert record.last_checked_at and record.updated_at >= record.created_at
    alice = _user("alice")
    assert alice.has_paid
    (entry,) = _actions(alice.id, "payment_success")
    assert entry.metadata["from"] == "initiated" and entry.metadata["via"] == "success"
    counters = _counters()
    assert (counters["payments#initiated"], counters["payments#success"], counters["revenue#BDT"]) == (0, 1, 100)


def test_json_answer_when_the_client_asks_for_it(api: Api, gateway: Sandbox) -> None:
    token, started = _started(api)
    response = _deliver(api, press(started["payment_url"], "pay"), json_answer=True)
    assert response.status_code == 200
    assert response.data == {"transaction_id": started["transaction_id"], "status": "success"}
    me = api.call("GET", "/api/me/", token=token)
    assert me.data["user"]["has_paid"] is True


def test_fail_return_confirmed_by_the_gateway_marks_failed(api: Api, gateway: Sandbox) -> None:
    _, started = _started(api)
    hop = press(started["payment_url"], "fail")
    assert hop.url == FAIL_URL
    response = _deliver(api, hop, json_answer=True)
    assert response.data == {"transaction_id": started["transaction_id"], "status": "failed"}
    record = _payment(started["transaction_id"])
    assert record.failure_reason == "gateway reported Failed"
    assert len(_actions(record.user_id, "payment_failed")) == 1
    assert not _user("alice").has_paid


def test_cancel_link_marks_cancelled(api: Api, gateway: Sandbox) -> None:
    _, started = _started(api)
    hop = press(started["payment_url"], "cancel")
    assert (hop.method, hop.url) == ("GET", gateway.transaction(started["transaction_id"]).fields["cancel_url"])
    assert hop.url.startswith(f"{CANCEL_URL}?transaction_id={started['transaction_id']}&token=")
    response = _deliver(api, hop)
    assert _dashboard_params(response) == {"payment": ["cancelled"], "transaction_id": [started["transaction_id"]]}
    assert len(_actions(_user("alice").id, "payment_cancelled")) == 1


def test_cancel_never_loses_a_payment_the_gateway_took(api: Api, gateway: Sandbox) -> None:
    _, started = _started(api)
    gateway.settle(started["transaction_id"], paid=True)
    response = _deliver(api, _cancel(started["transaction_id"], gateway), json_answer=True)
    assert response.data["status"] == "success"
    assert _user("alice").has_paid


# --- returns: forgeries and mismatches ---------------------------------------------------


def test_forged_success_for_an_unpaid_payment_changes_nothing(api: Api, gateway: Sandbox) -> None:
    token, started = _started(api)
    tid = started["transaction_id"]
    forged = _forged("success", tid, signature_key="leaked-secret-value")

    as_json = _deliver(api, forged, json_answer=True)
    assert (as_json.status_code, as_json.data["error"]["code"]) == (400, "invalid_callback")
    as_redirect = _deliver(api, forged)
    assert _dashboard_params(as_redirect) == {"payment": ["invalid"], "transaction_id": [tid]}

    assert _payment(tid).status == "initiated"
    assert not _user("alice").has_paid
    assert _counters()["payments#success"] == 0
    rejected = _rejections()
    assert len(rejected) == 2
    entry = rejected[0]
    assert entry.user_id == _user("alice").id
    assert entry.metadata["kind"] == "success" and entry.metadata["reason"] == "not_paid"
    assert entry.metadata["status"] == {"ours": "initiated", "theirs": "Incomplete"}
    assert "leaked-secret-value" not in str(entry.metadata) and "cus_email" not in str(entry.metadata)
    assert api.call("GET", "/api/me/", token=token).data["user"]["has_paid"] is False


def test_forged_return_naming_another_users_payment_never_pays_the_forger(api: Api, gateway: Sandbox) -> None:
    _, alice_payment = _started(api, "alice")
    mallory = api.signed_up("mallory")
    forged = _forged("success", alice_payment["transaction_id"], cus_name="mallory", cus_email="mallory@example.com")

    assert _deliver(api, forged, json_answer=True).status_code == 400  # unpaid: rejected
    gateway.settle(alice_payment["transaction_id"], paid=True)  # alice really pays
    assert _deliver(api, forged, json_answer=True).data["status"] == "success"

    assert _user("alice").has_paid
    assert not _user("mallory").has_paid
    assert api.call("GET", "/api/me/", token=mallory).data["user"]["has_paid"] is False
    assert api.call("GET", f"/api/transactions/{alice_payment['transaction_id']}/", token=mallory).status_code == 404


@pytest.mark.parametrize(
    "claimed",
    ["0123456789abcdef0123456789abcdef", "", "../../etc/passwd", "x" * 5000, "ABCDEF0123456789ABCDEF0123456789"],
)
def test_return_for_an_unknown_transaction_is_rejected(
    api: Api, gateway: Sandbox, gateway_calls: list[str], claimed: str
) -> None:
    response = _deliver(api, _forged("success", claimed), json_answer=True)
    assert (response.status_code, response.data["error"]["code"]) == (400, "invalid_callback")
    redirect = _deliver(api, _forged("fail", claimed))
    expected_id = claimed if claimed.startswith("0123") else ""
    assert _dashboard_params(redirect) == {"payment": ["invalid"], "transaction_id": [expected_id]}
    assert gateway_calls == []
    rejected = _rejections()
    assert len(rejected) == 2
    assert {a.user_id for a in rejected} == {activity.ANONYMOUS}
    assert activity.view(rejected[0])["user_id"] is None
    assert rejected[0].metadata["reason"] == "unknown_transaction"
    assert len(rejected[0].metadata["transaction_id"]) <= 64


def test_cancel_for_an_unknown_transaction_is_rejected(api: Api, gateway: Sandbox) -> None:
    response = _deliver(api, _cancel("feedfacefeedfacefeedfacefeedface"), json_answer=True)
    assert (response.status_code, response.data["error"]["code"]) == (400, "invalid_callback")
    missing = _deliver(api, GatewayReturn("GET", CANCEL_URL), json_answer=True)
    assert missing.status_code == 400


@pytest.mark.parametrize(
    ("fault", "field", "values"),
    [
        ({"search_amount": "10.00"}, "amount", {"ours": "100.00", "theirs": "10.00"}),
        ({"search_amount": "100.001"}, "amount", {"ours": "100.00", "theirs": "100.001"}),
        ({"search_amount": "1OO.00"}, "amount", {"ours": "100.00", "theirs": None}),
        ({"search_currency": "USD"}, "currency", {"ours": "BDT", "theirs": "USD"}),
        ({"search_store": "someoneelse"}, "store_id", None),
    ],
)
def test_paid_answer_that_does_not_match_our_record_is_rejected(
    api: Api, gateway: Sandbox, fault: dict[str, str], field: str, values: dict[str, Any] | None
) -> None:
    _, started = _started(api)
    tid = started["transaction_id"]
    gateway.settle(tid, paid=True)
    gateway.set_faults(**fault)
    for kind in ("success", "fail"):
        response = _deliver(api, _forged(kind, tid), json_answer=True)
        assert (response.status_code, response.data["error"]["code"]) == (400, "invalid_callback")
    assert _deliver(api, _cancel(tid, gateway), json_answer=True).status_code == 400  # no cancel over a claimed payment
    assert _payment(tid).status == "initiated"
    assert not _user("alice").has_paid
    entry = _rejections()[0]
    assert entry.metadata["reason"] == "mismatch"
    assert entry.metadata["mismatched"] == [field]
    if values is None:
        assert "someoneelse" not in str(entry.metadata)  # store ids are named, not echoed
    else:
        assert entry.metadata[field] == values


def test_paid_answer_for_another_transaction_id_is_rejected(
    api: Api, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, started = _started(api)
    tid = started["transaction_id"]
    gateway.settle(tid, paid=True)
    client = aamarpay.client()
    search = client.search

    def someone_elses(tran_id: str) -> aamarpay.SearchResult | None:
        result = search(tran_id)
        assert result is not None
        return dataclasses.replace(result, mer_txnid="f" * 32)

    monkeypatch.setattr(client, "search", someone_elses)
    response = _deliver(api, _forged("success", tid), json_answer=True)
    assert response.status_code == 400
    assert _rejections()[0].metadata["mismatched"] == ["mer_txnid"]
    assert _payment(tid).status == "initiated"


def test_amount_is_compared_as_a_decimal(api: Api, gateway: Sandbox) -> None:
    _, started = _started(api)
    gateway.settle(started["transaction_id"], paid=True)
    gateway.set_faults(search_amount="100")
    assert _deliver(api, _forged("success", started["transaction_id"]), json_answer=True).data["status"] == "success"


def test_forged_fail_for_a_pending_payment_changes_nothing(api: Api, gateway: Sandbox) -> None:
    _, started = _started(api)
    response = _deliver(api, _forged("fail", started["transaction_id"], pay_status="Failed"), json_answer=True)
    assert response.data == {"transaction_id": started["transaction_id"], "status": "initiated"}
    assert _payment(started["transaction_id"]).status == "initiated"


# --- returns: finality, replays, lifting --------------------------------------------------


def test_replayed_success_and_late_fail_or_cancel_change_nothing(api: Api, gateway: Sandbox) -> None:
    _, started = _started(api)
    tid = started["transaction_id"]
    hop = press(started["payment_url"], "pay")
    for _ in range(3):
        assert _deliver(api, hop, json_answer=True).data["status"] == "success"
    gateway.set_faults(search_status="Failed")  # even if the gateway later said otherwise
    assert _deliver(api, _forged("fail", tid), json_answer=True).data["status"] == "success"
    assert _deliver(api, _cancel(tid, gateway), json_answer=True).data["status"] == "success"
    assert _payment(tid).status == "success"
    assert len(_actions(_user("alice").id, "payment_success")) == 1
    assert len(_actions(_user("alice").id, "payment_failed")) == 0
    assert _counters()["payments#success"] == 1 and _counters()["revenue#BDT"] == 100


@pytest.mark.parametrize("earlier", ["failed", "cancelled", "expired"])
def test_verified_success_lifts_a_non_success_state(api: Api, gateway: Sandbox, earlier: str) -> None:
    _, started = _started(api)
    tid = started["transaction_id"]
    _force_status(tid, earlier)
    hop = press(started["payment_url"], "pay")  # the hosted page stays payable after fail/cancel
    assert _deliver(api, hop, json_answer=True).data["status"] == "success"
    assert _user("alice").has_paid
    assert _actions(_user("alice").id, "payment_success")[0].metadata["from"] == earlier


def test_fail_or_cancel_does_not_move_a_failed_or_cancelled_payment_sideways(api: Api, gateway: Sandbox) -> None:
    _, started = _started(api)
    tid = started["transaction_id"]
    _deliver(api, press(started["payment_url"], "fail"))
    assert _deliver(api, _cancel(tid, gateway), json_answer=True).data["status"] == "failed"


# --- returns: the gateway misbehaves during verification ----------------------------------


@pytest.mark.parametrize("fault", ["search_timeout", "search_500", "search_garbage"])
def test_no_answer_from_the_gateway_during_a_return_changes_nothing_and_loses_nothing(
    api: Api, gateway: Sandbox, fault: str
) -> None:
    _, started = _started(api)
    tid = started["transaction_id"]
    hop = press(started["payment_url"], "pay")  # paid at the gateway
    gateway.set_faults(**{fault: True})
    for answer in (_deliver(api, hop, json_answer=True), _deliver(api, _cancel(tid, gateway), json_answer=True)):
        assert (answer.status_code, answer.data) == (200, {"transaction_id": tid, "status": "initiated"})
    assert _dashboard_params(_deliver(api, hop)) == {"payment": ["initiated"], "transaction_id": [tid]}
    assert _payment(tid).status == "initiated"
    assert not _user("alice").has_paid
    assert _rejections() == []

    gateway.set_faults(**{fault: False})
    assert _deliver(api, hop, json_answer=True).data["status"] == "success"


def test_gateway_without_a_record_is_no_proof(api: Api, gateway: Sandbox) -> None:
    _, started = _started(api)
    tid = started["transaction_id"]
    hop = press(started["payment_url"], "pay")
    gateway.set_faults(search_unknown=True)  # Invalid-Data: the gateway holds no such transaction
    assert _deliver(api, hop, json_answer=True).status_code == 400
    assert _rejections()[0].metadata["status"] == {"ours": "initiated", "theirs": None}
    assert _payment(tid).status == "initiated"
    gateway.set_faults(search_unknown=False)
    assert _deliver(api, hop, json_answer=True).data["status"] == "success"


def test_twenty_simultaneous_success_returns_move_the_payment_once(
    api: Api, gateway: Sandbox, atomic_dynamodb: None
) -> None:
    _, started = _started(api)
    hop = press(started["payment_url"], "pay")
    barrier = threading.Barrier(20)
    outcomes: list[payments.ReturnOutcome] = []

    def deliver() -> None:
        barrier.wait()
        outcomes.append(payments.handle_return("success", hop.form))

    threads = [threading.Thread(target=deliver) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == 20
    # Each answers the payment's state; one that lost the search slot answers it as stored then.
    assert {o.valid for o in outcomes} == {True}
    assert "success" in {o.status for o in outcomes} <= {"success", "initiated"}
    assert len(_actions(_user("alice").id, "payment_success")) == 1
    counters = _counters()
    assert (counters["payments#success"], counters["payments#initiated"], counters["revenue#BDT"]) == (1, 0, 100)


# --- reads -------------------------------------------------------------------------------


def test_list_own_payments_newest_first_with_a_cursor(api: Api, gateway: Sandbox) -> None:
    token = api.signed_up("alice")
    ids = [_initiate(api, token).data["transaction_id"] for _ in range(3)]
    _started(api, "bob")

    first = api.call("GET", "/api/transactions/?limit=2", token=token)
    assert first.status_code == 200
    assert [p["transaction_id"] for p in first.data["items"]] == ids[:0:-1]
    assert set(first.data["items"][0]) == {
        "transaction_id",
        "status",
        "amount",
        "currency",
        "gateway_transaction_id",
        "created_at",
        "updated_at",
    }
    second = api.call("GET", f"/api/transactions/?limit=2&cursor={first.data['next_cursor']}", token=token)
    assert [p["transaction_id"] for p in second.data["items"]] == ids[:1]
    assert second.data["next_cursor"] is None
    bob = api.login("bob")["access"]
    stolen = api.call("GET", f"/api/transactions/?cursor={first.data['next_cursor']}", token=bob)
    assert (stolen.status_code, stolen.data["error"]["code"]) == (400, "invalid_cursor")


def test_reading_a_pending_payment_rechecks_the_gateway_at_most_every_30_seconds(
    api: Api, gateway: Sandbox, gateway_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token, started = _started(api)
    tid = started["transaction_id"]
    path = f"/api/transactions/{tid}/"
    searches = gateway_calls.count

    assert api.call("GET", path, token=token).data["status"] == "initiated"
    assert searches("GET /api/v1/trxcheck/request.php") == 1
    gateway.settle(tid, paid=True)  # paid, but the browser never came back
    assert api.call("GET", path, token=token).data["status"] == "initiated"  # inside the window: no call
    assert searches("GET /api/v1/trxcheck/request.php") == 1

    with _clock_shifted(monkeypatch, -31):  # the window has passed
        view = api.call("GET", path, token=token).data
    assert (view["status"], view["gateway_transaction_id"]) == ("success", gateway.transaction(tid).track)
    assert searches("GET /api/v1/trxcheck/request.php") == 2
    api.call("GET", path, token=token)
    assert searches("GET /api/v1/trxcheck/request.php") == 2  # success is final: never asked again
    assert _user("alice").has_paid


def test_reading_finds_a_payment_made_after_a_cancel(
    api: Api, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    token, started = _started(api)
    tid = started["transaction_id"]
    _deliver(api, press(started["payment_url"], "cancel"))
    assert _payment(tid).status == "cancelled"
    press(started["payment_url"], "pay")  # back to the hosted page, pays, closes the tab
    with _clock_shifted(monkeypatch, -31):  # the read's 30 s window since the cancel's check
        assert api.call("GET", f"/api/transactions/{tid}/", token=token).data["status"] == "success"
    assert _user("alice").has_paid


def test_reading_while_the_gateway_is_down_answers_the_record(api: Api, gateway: Sandbox) -> None:
    token, started = _started(api)
    gateway.set_faults(search_500=True)
    response = api.call("GET", f"/api/transactions/{started['transaction_id']}/", token=token)
    assert (response.status_code, response.data["status"]) == (200, "initiated")


@pytest.mark.parametrize("whose", ["bob", "unknown", "malformed"])
def test_other_peoples_or_unknown_payments_are_404(api: Api, gateway: Sandbox, whose: str) -> None:
    _, bob_payment = _started(api, "bob")
    token = api.signed_up("alice")
    tid = {"bob": bob_payment["transaction_id"], "unknown": "0" * 32, "malformed": "nope"}[whose]
    response = api.call("GET", f"/api/transactions/{tid}/", token=token)
    assert (response.status_code, response.data["error"]["code"]) == (404, "not_found")


# --- admin verify ------------------------------------------------------------------------


def test_verify_now_settles_with_the_actor_and_reports_gateway_trouble(api: Api, gateway: Sandbox) -> None:
    _, started = _started(api)
    tid = started["transaction_id"]
    gateway.set_faults(search_500=True)
    with pytest.raises(errors.GatewayError):
        payments.verify_now(tid, actor_id="admin-1")
    gateway.set_faults(search_500=False, search_timeout=True)
    with pytest.raises(errors.GatewayTimeout):
        payments.verify_now(tid, actor_id="admin-1")
    gateway.set_faults(search_timeout=False)
    with pytest.raises(errors.NotFound):
        payments.verify_now("0" * 32, actor_id="admin-1")

    gateway.settle(tid, paid=True)
    assert payments.verify_now(tid, actor_id="admin-1")["status"] == "success"
    entry = _actions(_user("alice").id, "payment_success")[0]
    assert (entry.actor_id, entry.metadata["via"]) == ("admin-1", "check")


# --- the reconciler ----------------------------------------------------------------------


def _aged_payment(api: Api, monkeypatch: pytest.MonkeyPatch, username: str, seconds: float) -> str:
    token = api.signed_up(username)
    with _clock_shifted(monkeypatch, seconds):
        response = _initiate(api, token)
    assert response.status_code == 201, response.data
    return response.data["transaction_id"]


def test_reconciler_settles_expires_and_leaves_young_payments_alone(
    api: Api, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch, dynamodb_calls: list[str]
) -> None:
    day = 24 * 3600
    paid_no_return = _aged_payment(api, monkeypatch, "paid", 600)
    failed_no_return = _aged_payment(api, monkeypatch, "failed", 600)
    abandoned = _aged_payment(api, monkeypatch, "abandoned", day + 60)
    paid_late = _aged_payment(api, monkeypatch, "paidlate", day + 120)  # old, but paid: never expired
    young = _aged_payment(api, monkeypatch, "young", 10)
    pending = _aged_payment(api, monkeypatch, "pending", 600)
    gateway.settle(paid_no_return, paid=True)
    gateway.settle(failed_no_return, paid=False)
    gateway.settle(paid_late, paid=True)
    gateway.settle(young, paid=True)
    dynamodb_calls.clear()

    summary = payments.reconcile_pending()

    assert summary == {
        "checked": 5,
        "success": 2,
        "review": 0,
        "failed": 1,
        "expired": 1,
        "unchanged": 1,
        "mismatches": 0,
        "gateway_errors": 0,
    }
    statuses = {tid: _payment(tid).status for tid in (paid_no_return, failed_no_return, abandoned, paid_late)}
    assert statuses == {
        paid_no_return: "success",
        failed_no_return: "failed",
        abandoned: "expired",
        paid_late: "success",
    }
    assert (_payment(young).status, _payment(pending).status) == ("initiated", "initiated")
    assert _user("paid").has_paid and _user("paidlate").has_paid and not _user("abandoned").has_paid
    assert len(_actions(_user("abandoned").id, "payment_expired")) == 1
    assert "Scan" not in dynamodb_calls
    assert payments.reconcile_pending()["checked"] == 0  # each checked one is due again later (backoff)
    with _clock_shifted(monkeypatch, -600):  # `pending` and `failed` (re-checked until expiry), now `young` too
        again = payments.reconcile_pending()
    assert (again["checked"], again["success"], again["unchanged"]) == (3, 1, 2)


def test_reconciler_work_is_bounded_and_stops_when_the_gateway_is_down(
    api: Api, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch, gateway_calls: list[str]
) -> None:
    ids = [_aged_payment(api, monkeypatch, f"user{i}", 25 * 3600) for i in range(5)]
    gateway.set_faults(search_500=True)
    summary = payments.reconcile_pending()
    assert (summary["gateway_errors"], summary["checked"], summary["expired"]) == (3, 0, 0)
    assert all(_payment(tid).status == "initiated" for tid in ids)  # unknown is not "unpaid"

    gateway.set_faults(search_500=False)
    gateway_calls.clear()
    assert payments.reconcile_pending(max_checks=2)["expired"] == 2
    assert gateway_calls == ["GET /api/v1/trxcheck/request.php"] * 2
    assert payments.reconcile_pending()["expired"] == 0  # the three asked in vain are due in 2 minutes
    with _clock_shifted(monkeypatch, -300):
        assert payments.reconcile_pending()["expired"] == 3


def test_a_mismatching_paid_answer_is_never_granted_and_expires_with_its_reason(
    api: Api, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Charged in another currency: not granted, not left open; staff find it expired, with why."""
    young = _aged_payment(api, monkeypatch, "bob", 600)
    tid = _aged_payment(api, monkeypatch, "alice", 25 * 3600)
    for each in (young, tid):
        gateway.settle(each, paid=True)
    gateway.set_faults(search_currency="USD")
    summary = payments.reconcile_pending()
    assert (summary["mismatches"], summary["expired"], summary["unchanged"]) == (2, 1, 1)
    assert _payment(young).status == "initiated"  # inside the window: asked again later
    payment = _payment(tid)
    assert payment.status == "expired" and not _user("alice").has_paid
    assert payment.failure_reason is not None and "currency (ours BDT, theirs USD)" in payment.failure_reason
    assert payment.check_queue is None and _user("alice").open_payments == 0
    entry = _actions(_user("alice").id, "payment_expired")[0]
    assert "does not match" in entry.metadata["reason"]


# --- cost per request (numbers reported in docs/performance.md) -----------------------------


def test_calls_per_initiation_and_per_return(
    api: Api, gateway: Sandbox, gateway_calls: list[str], dynamodb_calls: list[str]
) -> None:
    token = api.signed_up("alice")
    dynamodb_calls.clear()
    started = _initiate(api, token).data
    # auth (1 TransactGet) + record/claim/activity/counters (1 TransactWrite) + payment_url
    assert dynamodb_calls == ["TransactGetItems", "TransactWriteItems", "UpdateItem"]
    assert gateway_calls == ["POST /jsonpost.php"]

    hop = press(started["payment_url"], "pay")
    dynamodb_calls.clear()
    gateway_calls.clear()
    _deliver(api, hop)
    # the search-slot claim (it is the read) + one transition transaction (with its counters)
    assert dynamodb_calls == ["UpdateItem", "TransactWriteItems"]
    assert gateway_calls == ["GET /api/v1/trxcheck/request.php"]

    dynamodb_calls.clear()
    gateway_calls.clear()
    _deliver(api, hop)  # a replay of a settled payment: one (refused) claim, no gateway call
    assert (dynamodb_calls, gateway_calls) == (["UpdateItem"], [])

    pending = _initiate(api, api.signed_up("bob")).data["transaction_id"]
    for claimed, reads, searches in [(pending, ["UpdateItem"], 1), ("0" * 32, ["UpdateItem"], 0), ("junk", [], 0)]:
        dynamodb_calls.clear()
        gateway_calls.clear()
        _deliver(api, _forged("success", claimed))  # rejected: + the security event
        assert (dynamodb_calls, len(gateway_calls)) == ([*reads, "PutItem"], searches)


# --- abuse: cancels, throttling, open payments, key reuse, starvation, conflicts ---------------


@pytest.mark.parametrize("token", [None, "", "guess", "other"])
def test_a_cancel_without_its_token_changes_nothing_and_answers_like_an_unknown_return(
    api: Api, gateway: Sandbox, gateway_calls: list[str], token: str | None
) -> None:
    _, started = _started(api)
    tid = started["transaction_id"]
    if token == "other":  # the token of another payment (one of the attacker's own)
        _, own = _started(api, "mallory")
        token = parse_qs(urlsplit(gateway.transaction(own["transaction_id"]).fields["cancel_url"]).query)["token"][0]
    query = {"transaction_id": tid} if token is None else {"transaction_id": tid, "token": token}
    hop = GatewayReturn("GET", f"{CANCEL_URL}?{urlencode(query)}")
    unknown = _deliver(api, _cancel("feedfacefeedfacefeedfacefeedface"), json_answer=True)
    gateway_calls.clear()

    as_json = _deliver(api, hop, json_answer=True)
    assert (as_json.status_code, as_json.data) == (unknown.status_code, unknown.data)
    assert _dashboard_params(_deliver(api, hop)) == {"payment": ["invalid"], "transaction_id": [tid]}
    record = _payment(tid)
    assert (record.status, record.searched_at) == ("initiated", None)  # not even the search slot was taken
    assert gateway_calls == []
    assert _actions(_user("alice").id, "payment_cancelled") == []
    assert _deliver(api, _cancel(tid, gateway), json_answer=True).data["status"] == "cancelled"  # the real link


def test_the_gateway_is_searched_once_per_ten_seconds_whatever_arrives(
    api: Api, gateway: Sandbox, gateway_calls: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settlement, "SEARCH_WINDOW_SECONDS", 10)
    token, started = _started(api)
    tid = started["transaction_id"]
    searches = gateway_calls.count
    fail = _forged("fail", tid, pay_status="Failed")
    for _ in range(25):
        assert _deliver(api, fail, json_answer=True).data == {"transaction_id": tid, "status": "initiated"}
    assert api.call("GET", f"/api/transactions/{tid}/", token=token).data["status"] == "initiated"
    assert payments.verify_now(tid, actor_id="admin-1")["status"] == "initiated"
    with _clock_shifted(monkeypatch, -200):  # the reconciler's first check is due, 8 s after the last search
        monkeypatch.setattr(settlement, "SEARCH_WINDOW_SECONDS", 200 + 10)
        assert payments.reconcile_pending()["checked"] == 0
    monkeypatch.setattr(settlement, "SEARCH_WINDOW_SECONDS", 10)
    assert searches("GET /api/v1/trxcheck/request.php") == 1

    gateway.settle(tid, paid=True)
    with _clock_shifted(monkeypatch, -11):  # the window has passed: the next return asks again
        assert _deliver(api, fail, json_answer=True).data["status"] == "success"
    assert searches("GET /api/v1/trxcheck/request.php") == 2


def test_twenty_five_parallel_returns_make_one_search(
    api: Api, gateway: Sandbox, gateway_calls: list[str], atomic_dynamodb: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settlement, "SEARCH_WINDOW_SECONDS", 10)
    _, started = _started(api)
    form = _forged("fail", started["transaction_id"], pay_status="Failed").form
    barrier = threading.Barrier(25)

    def deliver() -> None:
        barrier.wait()
        payments.handle_return("fail", form)

    threads = [threading.Thread(target=deliver) for _ in range(25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gateway_calls.count("GET /api/v1/trxcheck/request.php") == 1


def test_at_most_five_open_payments_per_user_even_in_a_burst(api: Api, gateway: Sandbox, atomic_dynamodb: None) -> None:
    token = api.signed_up("alice")
    principal = accounts.Principal(user=_user("alice"), claims=None)  # type: ignore[arg-type]
    barrier = threading.Barrier(12)
    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            payments.initiate(principal, {}, idempotency_key=None, base_url="http://testserver")
            outcomes.append("created")
        except errors.ApiError as error:
            outcomes.append(error.code)

    threads = [threading.Thread(target=attempt) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["created"] * 5 + ["too_many_payments"] * 7
    assert len(list(Payment.by_user.query(principal.user_id))) == 5
    refused = _initiate(api, token)
    assert (refused.status_code, refused.data["error"]["code"]) == (429, "too_many_payments")

    open_ids = [p.transaction_id for p in Payment.by_user.query(principal.user_id)]
    assert _deliver(api, _cancel(open_ids[0], gateway), json_answer=True).data["status"] == "cancelled"
    assert _initiate(api, token).status_code == 201  # a payment that left `initiated` frees a place
    assert _user("alice").open_payments == 5


def test_expired_and_refused_payments_free_their_place(
    api: Api, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = api.signed_up("alice")
    with _clock_shifted(monkeypatch, 25 * 3600):
        for _ in range(4):
            assert _initiate(api, token).status_code == 201
    gateway.set_faults(initiate_500=True)
    assert _initiate(api, token).status_code == 502  # refused at once: never open
    gateway.set_faults(initiate_500=False)
    assert _user("alice").open_payments == 4
    assert payments.reconcile_pending()["expired"] == 4
    assert _user("alice").open_payments == 0


def test_an_idempotency_key_reused_with_another_body_is_422(api: Api, gateway: Sandbox) -> None:
    token = api.signed_up("alice")
    first = _initiate(api, token, {"cus_city": "Dhaka", "cus_phone": "01700"}, **{"Idempotency-Key": "k"})
    assert first.status_code == 201
    same = _initiate(api, token, '{"cus_phone":"01700",  "cus_city":"Dhaka"}', **{"Idempotency-Key": "k"})
    assert same.data == first.data  # the same request spelt differently replays
    for other in ({"cus_city": "Chittagong", "cus_phone": "01700"}, {}):
        reused = _initiate(api, token, other, **{"Idempotency-Key": "k"})
        assert (reused.status_code, reused.data["error"]["code"]) == (422, "idempotency_key_reused")
    assert len(list(Payment.by_user.query(_user("alice").id))) == 1


def _queued(api: Api, user_id: str, seconds_ago: float, monkeypatch: pytest.MonkeyPatch) -> str:
    """A payment written straight to the table (no gateway call), created `seconds_ago`."""
    with _clock_shifted(monkeypatch, seconds_ago):
        payment, _ = initiation._new_payment(user_id)
    payment.save()
    return payment.transaction_id


def test_no_burst_of_payments_keeps_an_older_one_from_being_checked(
    api: Api, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    victim = _aged_payment(api, monkeypatch, "victim", 1800)
    gateway.settle(victim, paid=True)  # paid, then closed the tab
    api.signed_up("mallory")
    crowd = [_queued(api, _user("mallory").id, 300 + i, monkeypatch) for i in range(12)]  # newer, all due

    summary = payments.reconcile_pending(max_checks=5)
    assert summary["checked"] == 5 and _payment(victim).status == "success"

    # The order survives runs: each takes the longest-due, so all are asked once before any twice.
    assert sorted(int(_payment(tid).checks) for tid in crowd) == [0] * 8 + [1] * 4
    for _ in range(2):
        assert payments.reconcile_pending(max_checks=4)["checked"] == 4
    assert {int(_payment(tid).checks) for tid in crowd} == {1}
    assert payments.reconcile_pending()["checked"] == 0  # and then not before their backoff


def test_the_reconciler_backs_off_per_payment_and_rechecks_cancelled_ones(
    api: Api, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, started = _started(api)
    tid = started["transaction_id"]
    _deliver(api, _cancel(tid, gateway))
    assert _payment(tid).status == "cancelled"
    due_times = []
    offset = 0.0
    for _ in range(4):
        offset += (clock.parse_iso(_payment(tid).next_check_at) - clock.now()).total_seconds() + 1
        with _clock_shifted(monkeypatch, -offset):
            assert payments.reconcile_pending()["checked"] == 1
        due_times.append(clock.parse_iso(_payment(tid).next_check_at))
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(due_times)]
    assert all(later > 1.9 * earlier for earlier, later in itertools.pairwise(gaps)), gaps

    press(started["payment_url"], "pay")  # back on the hosted page after the cancel, pays, closes the tab
    with _clock_shifted(monkeypatch, -offset - 3 * 3600):
        assert payments.reconcile_pending()["success"] == 1
    assert _user("alice").has_paid
    assert _payment(tid).check_queue is None  # settled: out of the queue


def test_a_return_survives_transaction_conflicts(api: Api, gateway: Sandbox) -> None:
    from tests.unit.conflicts import CONFLICT, transaction_conflicts

    _, started = _started(api)
    tid = started["transaction_id"]
    gateway.settle(tid, paid=True)
    with transaction_conflicts(db.CONFLICT_ATTEMPTS) as injected:  # every retry meets another transaction
        answer = _deliver(api, _forged("success", tid), json_answer=True)
    assert injected.count(CONFLICT) == db.CONFLICT_ATTEMPTS
    assert answer.status_code == 400  # not confirmed *yet*: the state as it is, never a 500
    assert _payment(tid).status == "initiated"
    with transaction_conflicts(1):  # one conflict: the retry goes through
        assert _deliver(api, _forged("success", tid), json_answer=True).data["status"] == "success"
    assert _user("alice").has_paid


def test_initiation_survives_transaction_conflicts(api: Api, gateway: Sandbox) -> None:
    from tests.unit.conflicts import transaction_conflicts

    token = api.signed_up("alice")
    with transaction_conflicts(1):
        assert _initiate(api, token).status_code == 201
    with transaction_conflicts(db.CONFLICT_ATTEMPTS):
        busy = _initiate(api, token)
    assert (busy.status_code, busy.data["error"]["code"]) == (409, "conflict")
    assert len(list(Payment.by_user.query(_user("alice").id))) == 1


# --- metrics ---------------------------------------------------------------------------------


def test_the_money_path_emits_its_metrics(api: Api, gateway: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.unit.core.test_metrics import emf_documents, values

    _, started = _started(api)
    tid = started["transaction_id"]
    assert _deliver(api, _forged("success", tid), json_answer=True).status_code == 400  # not paid yet: forged
    assert _deliver(api, _forged("success", "f" * 32), json_answer=True).status_code == 400  # unknown
    gateway.settle(tid, paid=True)
    assert _deliver(api, _forged("success", tid), json_answer=True).data["status"] == "success"
    output = capsys.readouterr().out
    documents = emf_documents(output)
    assert sum(values(documents, "PaymentsInitiated")) == 1
    assert sum(values(documents, "PaymentsSettled", status="success")) == 1
    assert sum(values(documents, "ReturnsRejected", reason="forged")) == 1
    assert sum(values(documents, "ReturnsRejected", reason="unknown")) == 1
    assert len(values(documents, "GatewayLatency", call="initiate")) == 1
    assert len(values(documents, "GatewayLatency", call="search")) == 2
    assert "alice" not in "".join(line for line in output.splitlines() if '"_aws"' in line)  # no personal data


def test_gateway_faults_and_the_reconciler_emit_theirs(
    api: Api, gateway: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.core.test_metrics import emf_documents, values

    gateway.set_faults(initiate_timeout=1)
    token = api.signed_up("alice")
    assert _initiate(api, token).status_code == 504
    payments.reconcile_pending()
    documents = emf_documents(capsys.readouterr().out)
    assert sum(values(documents, "GatewayErrors", call="initiate")) == 1
    assert len(values(documents, "ReconcilerBacklogAge")) == 1  # every run, due payments or not
