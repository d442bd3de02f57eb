"""The real gateway's replies (tests/aamarpay_replies.py, protocol section 5) through the client,
the settlement, the reconciler, the returns and the review queue.

The sandbox emulator starts every payment (its hosted page, its cancel link); the search API's
answer for a payment is then a corpus shape, byte for byte as aamarPay serves it (JSON labelled
text/html, nulls, plain-text refusals), fed through the client's own transport.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from chalicelib import payments
from chalicelib.accounts import accounts
from chalicelib.core import clock, counters
from chalicelib.core.config import app_secrets, settings
from chalicelib.core.models import Activity, Payment, User
from chalicelib.payments import aamarpay, settlement
from chalicelib.payments.settlement import Verdict
from chalicelib.staff import stats
from local.sandbox import Sandbox
from tests import aamarpay_replies, mailbox
from tests.aamarpay_replies import Reply
from tests.unit.conftest import Api

SEARCH_PATH = "/api/v1/trxcheck/request.php"

# What each search shape means for one of our BDT payments of 100.00.
MEANINGS = {
    "success": Verdict.PAID,
    "success_2021": Verdict.PAID,
    "risky": Verdict.RISKY,
    "failed": Verdict.FAILED,
    "expired": Verdict.FAILED,
    "incomplete": Verdict.NOT_PAID,
    "invalid_data": Verdict.NOT_PAID,
}


# Each return asks the gateway (the 10 s window has its own tests, which set it).
pytestmark = pytest.mark.usefixtures("every_return_is_searched")


def _response(reply: Reply) -> requests.Response:
    response = requests.Response()
    response.status_code = reply.status
    response._content = reply.body.encode()
    response.headers["Content-Type"] = reply.content_type
    return response


class CorpusSearch:
    """The search API answering a corpus shape per transaction; everything else goes to the sandbox."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.answers: dict[str, Reply] = {}
        self.asked: list[str] = []
        real_send = aamarpay.AamarPayClient._send

        def send(client: aamarpay.AamarPayClient, method: str, path: str, **kwargs: Any) -> requests.Response:
            tran_id = (kwargs.get("params") or {}).get("request_id", "")
            if path == SEARCH_PATH and tran_id in self.answers:
                self.asked.append(tran_id)
                return _response(self.answers[tran_id])
            return real_send(client, method, path, **kwargs)

        monkeypatch.setattr(aamarpay.AamarPayClient, "_send", send)

    def answer(self, transaction_id: str, name: str, **money: str) -> None:
        store = app_secrets().aamarpay_store_id
        self.answers[transaction_id] = aamarpay_replies.search_reply(name, transaction_id, store, **money)


@pytest.fixture
def corpus(gateway: Sandbox, monkeypatch: pytest.MonkeyPatch) -> CorpusSearch:
    return CorpusSearch(monkeypatch)


def _start(api: Api, token: str) -> dict[str, Any]:
    response = api.call("POST", "/api/initiate-payment/", {}, token)
    assert response.status_code == 201, response.data
    return response.data


def _return(api: Api, kind: str, transaction_id: str) -> Any:
    """The browser's success/fail return (the form is only a hint: the search decides)."""
    store = app_secrets().aamarpay_store_id
    form = aamarpay_replies.return_form(transaction_id, store, paid=kind == "success")
    response = api.client.http.post(
        f"/api/payment/{kind}/",
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        body=urlencode(form).encode(),
    )
    return response.status_code, json.loads(response.body)


def _payment(transaction_id: str) -> Payment:
    return Payment.get(transaction_id, consistent_read=True)


def _user(user_id: str) -> User:
    return User.get(user_id, consistent_read=True)


def _actions(user_id: str, action: str) -> list[Activity]:
    return [entry for entry in Activity.query(user_id) if entry.action == action]


def _aged(monkeypatch: pytest.MonkeyPatch, seconds: float) -> Callable[[], None]:
    """Move the clock `seconds` into the future (payments look that much older); returns the undo."""
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now() + timedelta(seconds=seconds))
    return lambda: monkeypatch.setattr(clock, "now", real_now)


# --- the client reads every shape ---------------------------------------------------------


@pytest.fixture
def answering(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Reply], aamarpay.AamarPayClient]]:
    """A client whose transport answers one given reply (no network)."""

    def answering(reply: Reply) -> aamarpay.AamarPayClient:
        gateway = aamarpay.AamarPayClient("https://sandbox.aamarpay.test", "ourstore", "k3y-never-logged")
        monkeypatch.setattr(gateway, "_send", lambda *_, **__: _response(reply))
        return gateway

    yield answering


@pytest.mark.parametrize("name", [*MEANINGS, "bad_credentials"])
def test_the_client_reads_every_real_search_shape(
    answering: Callable[[Reply], aamarpay.AamarPayClient], name: str
) -> None:
    tid = "c0ffee" * 5 + "ab"
    reply = aamarpay_replies.search_reply(name, tid, "ourstore")
    gateway = answering(reply)
    if name == "bad_credentials":
        with pytest.raises(aamarpay.GatewayAuthFailed, match="signature key not matched"):
            gateway.search(tid)
        return
    result = gateway.search(tid)
    if name == "invalid_data":
        assert result is None  # the gateway holds no such transaction: an answer, not a failure
        return
    assert result is not None
    assert (result.mer_txnid, result.store_id, result.merchant_currency) == (tid, "ourstore", "BDT")
    assert result.merchant_amount == Decimal("100.00") and result.taka_amount == Decimal("100.00")
    assert result.is_successful is (name in ("success", "success_2021", "risky"))
    assert result.is_risky is (name == "risky")
    assert result.ended_unpaid is (name in ("failed", "expired"))


def test_invalid_data_about_another_transaction_is_a_failure(
    answering: Callable[[Reply], aamarpay.AamarPayClient],
) -> None:
    reply = aamarpay_replies.search_reply("invalid_data", "a" * 32, "ourstore")
    with pytest.raises(aamarpay.GatewayFailure, match="no transaction record"):
        answering(reply).search("b" * 32)


def test_a_usd_payment_comes_back_in_taka_with_the_merchant_figures_kept(
    answering: Callable[[Reply], aamarpay.AamarPayClient],
) -> None:
    tid = "d" * 32
    result = answering(aamarpay_replies.search_reply("success", tid, "ourstore", currency="USD")).search(tid)
    assert result is not None
    assert (result.currency, result.amount) == ("BDT", Decimal("12250.00"))
    assert (result.merchant_currency, result.merchant_amount) == ("USD", Decimal("100.00"))
    assert (result.taka_amount, result.rate) == (Decimal("12250.00"), aamarpay_replies.USD_RATE)


@pytest.mark.parametrize("reply", aamarpay_replies.INITIATION_REPLIES, ids=lambda reply: reply.name)
def test_the_client_reads_every_real_initiation_shape(
    answering: Callable[[Reply], aamarpay.AamarPayClient], reply: Reply
) -> None:
    gateway = answering(reply)
    start = {
        "tran_id": "e" * 32,
        "amount": Decimal("100"),
        "currency": "BDT",
        "desc": "Upload access",
        "customer": aamarpay.Customer("reader", "reader@example.com"),
        "success_url": "https://merchant.test/s",
        "fail_url": "https://merchant.test/f",
        "cancel_url": "https://merchant.test/c",
    }
    if reply.name == "ok":
        assert gateway.initiate(**start) == aamarpay_replies.SANDBOX_PAGE
        return
    refused = aamarpay.GatewayAuthFailed if reply.name in ("bad_key", "bad_store_legacy") else aamarpay.GatewayFailure
    with pytest.raises(refused) as raised:
        gateway.initiate(**start)
    assert raised.value.reason.startswith("gateway refused: ")
    assert "k3y-never-logged" not in raised.value.reason


@pytest.mark.parametrize(("name", "verdict"), MEANINGS.items())
def test_every_shape_gets_its_verdict(aws_resources: dict[str, Any], name: str, verdict: Verdict) -> None:
    tid = "f" * 32
    payment = Payment(transaction_id=tid, status="initiated", amount="100.00", currency="BDT")
    reply = aamarpay_replies.search_reply(name, tid, app_secrets().aamarpay_store_id)
    result = (
        None
        if name == "invalid_data"
        else aamarpay.SearchResult.from_record({key: aamarpay._text(value) for key, value in reply.json().items()})
    )
    assert settlement.verify(payment, result).verdict is verdict


def test_a_bdt_payment_answered_in_another_currency_is_a_mismatch(aws_resources: dict[str, Any]) -> None:
    tid = "f" * 32
    payment = Payment(transaction_id=tid, status="initiated", amount="100.00", currency="BDT")
    record = aamarpay_replies.search_record(tid, app_secrets().aamarpay_store_id, currency="USD")
    check = settlement.verify(payment, aamarpay.SearchResult.from_record(record))
    assert (check.verdict, check.mismatched) == (Verdict.MISMATCH, ("currency",))


# --- a transaction the gateway never recorded ---------------------------------------------


def test_a_payment_the_gateway_never_recorded_expires_and_frees_its_slot(
    api: Api, corpus: CorpusSearch, gateway: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = api.signed_up("alice")
    user_id = accounts.authenticate(token).user_id
    unrecorded = [_start(api, token)["transaction_id"] for _ in range(5)]
    for tid in unrecorded:
        corpus.answer(tid, "invalid_data")
    assert api.call("POST", "/api/initiate-payment/", {}, token).status_code == 429  # five open slots taken

    inside = payments.reconcile_pending()
    assert inside["gateway_errors"] == 0

    undo = _aged(monkeypatch, 25 * 3600)
    summary = payments.reconcile_pending()
    undo()
    assert (summary["expired"], summary["gateway_errors"]) == (5, 0)  # no circuit broken by "no record"
    assert {_payment(tid).status for tid in unrecorded} == {"expired"}
    assert _user(user_id).open_payments == 0
    assert _start(api, token)["status"] == "initiated"  # the slots are free again


def test_a_cancel_by_get_or_post_cancels_a_payment_the_gateway_never_recorded(
    api: Api, corpus: CorpusSearch, gateway: Sandbox
) -> None:
    token = api.signed_up("alice")
    for method in ("GET", "POST"):
        tid = _start(api, token)["transaction_id"]
        corpus.answer(tid, "invalid_data")
        cancel_url = gateway.transaction(tid).fields["cancel_url"]
        path = cancel_url[cancel_url.index("/api/") :]
        without_token = path.split("&token=")[0]
        forged = getattr(api.client.http, method.lower())(without_token, headers={"Accept": "application/json"})
        assert forged.status_code == 400 and _payment(tid).status == "initiated"
        headers = {"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"}
        response = getattr(api.client.http, method.lower())(path, headers=headers, body=b"")
        assert response.status_code == 200, response.body
        assert json.loads(response.body) == {"transaction_id": tid, "status": "cancelled"}


def test_the_superusers_verify_says_the_gateway_holds_no_record(
    api: Api, corpus: CorpusSearch, tokens: dict[str, str]
) -> None:
    token = api.signed_up("alice")
    tid = _start(api, token)["transaction_id"]
    corpus.answer(tid, "invalid_data")
    response = api.call("POST", f"/api/admin/transactions/{tid}/verify/", None, tokens["superuser"])
    assert response.status_code == 200, response.data
    assert (response.data["status"], response.data["gateway"]) == ("initiated", {"record": False})


def test_refused_credentials_stop_the_reconciler_at_once(
    api: Api,
    corpus: CorpusSearch,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = api.signed_up("alice")
    ids = [_start(api, token)["transaction_id"] for _ in range(4)]
    for tid in ids:
        corpus.answer(tid, "bad_credentials")
    capsys.readouterr()
    undo = _aged(monkeypatch, 600)
    summary = payments.reconcile_pending()
    undo()
    assert (summary["gateway_errors"], summary["checked"]) == (1, 0)
    assert len(corpus.asked) == 1  # every further call would fail: none is made
    metrics_out = capsys.readouterr().out
    assert '"GatewayAuthFailed":[1.0]' in metrics_out
    refused = [record for record in caplog.records if record.getMessage() == "aamarpay credentials refused"]
    assert [record.levelname for record in refused] == ["ERROR"]
    assert app_secrets().aamarpay_signature_key not in metrics_out + caplog.text


# --- every currency -----------------------------------------------------------------------


def test_a_usd_payment_is_granted_from_the_merchant_figures(
    api: Api, corpus: CorpusSearch, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYMENT_CURRENCY", "USD")
    settings.cache_clear()
    try:
        token = api.signed_up("alice")
        started = _start(api, token)
        assert (started["amount"], started["currency"]) == ("100.00", "USD")
        tid = started["transaction_id"]
        corpus.answer(tid, "success", currency="USD")
        assert _return(api, "success", tid) == (200, {"transaction_id": tid, "status": "success"})
        payment = _payment(tid)
        assert (payment.gateway_amount_bdt, payment.gateway_rate) == ("12250.00", aamarpay_replies.USD_RATE)
        assert stats.values([counters.revenue_key("USD")])[counters.revenue_key("USD")] == Decimal("100")
        entry = _actions(payment.user_id, "payment_success")[0]
        assert (entry.metadata["amount_bdt"], entry.metadata["rate"]) == ("12250.00", aamarpay_replies.USD_RATE)
    finally:
        settings.cache_clear()


# --- risky cards: the review queue --------------------------------------------------------


def _held(api: Api, corpus: CorpusSearch, username: str) -> tuple[str, str]:
    """A user whose payment the gateway reports paid with a risky card: (token, transaction id)."""
    token = api.signed_up(username)
    tid = _start(api, token)["transaction_id"]
    corpus.answer(tid, "risky")
    assert _return(api, "success", tid) == (200, {"transaction_id": tid, "status": "review"})
    return token, tid


def test_a_risky_payment_is_held_and_grants_nothing(api: Api, corpus: CorpusSearch, monkeypatch: Any) -> None:
    token, tid = _held(api, corpus, "alice")
    payment = _payment(tid)
    assert not _user(payment.user_id).has_paid and _user(payment.user_id).open_payments == 0
    assert payment.check_queue is None
    seen = api.call("GET", f"/api/transactions/{tid}/", None, token).data
    assert seen["status"] == "review" and "risk level 1" in seen["review_reason"]
    upload = api.call("POST", "/api/upload/", {"filename": "a.txt", "size": 10}, token)
    assert upload.status_code == 402
    assert len(_actions(payment.user_id, "payment_review")) == 1

    corpus.answer(tid, "success")  # nothing the gateway says moves it out of review
    assert _return(api, "success", tid)[1]["status"] == "review"
    undo = _aged(monkeypatch, 25 * 3600)
    payments.reconcile_pending()
    undo()
    assert _payment(tid).status == "review" and corpus.asked.count(tid) == 1

    dashboard = api.client.http.post(
        "/api/payment/success/",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        body=urlencode({"mer_txnid": tid}).encode(),
    )
    assert "payment=review" in dashboard.headers["Location"]


@pytest.mark.usefixtures("atomic_dynamodb")
def test_a_superuser_approves_a_held_payment_once(
    api: Api, corpus: CorpusSearch, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token, tid = _held(api, corpus, "alice")
    path = f"/api/admin/transactions/{tid}/approve/"
    assert api.call("POST", path, None, tokens["staff"]).status_code == 403  # staff may only look
    listed = api.call("GET", "/api/admin/transactions/?status=review", None, tokens["staff"]).data["items"]
    assert [item["transaction_id"] for item in listed] == [tid] and listed[0]["review_reason"]

    answers: list[Any] = []
    barrier = threading.Barrier(4)

    def approve() -> None:
        barrier.wait()
        answers.append(api.call("POST", path, None, tokens["superuser"]))

    threads = [threading.Thread(target=approve) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200, 409, 409, 409], [answer.data for answer in answers]
    assert {answer.data["error"]["code"] for answer in answers if answer.status_code == 409} == {"invalid_state"}

    payment = _payment(tid)
    assert payment.status == "success" and _user(payment.user_id).has_paid
    entries = _actions(payment.user_id, "payment_approved")
    assert len(entries) == 1 and entries[0].actor_id == tokens["superuser_id"]
    totals = stats.values([counters.status_key("payments", "review"), counters.status_key("payments", "success")])
    assert (totals["payments#review"], totals["payments#success"]) == (0, 1)
    assert api.call("POST", "/api/upload/", {"filename": "a.txt", "size": 10}, token).status_code == 201
    jobs = [json.loads(message["Body"]) for message in mailbox.queued()]
    assert [job["transaction_id"] for job in jobs if job["kind"] == "receipt"] == [tid]  # the one approval that won


def test_a_rejected_payment_stays_failed_whatever_the_gateway_says(
    api: Api, corpus: CorpusSearch, tokens: dict[str, str]
) -> None:
    _, tid = _held(api, corpus, "alice")
    long_note = {"note": "x" * 501}
    assert api.call("POST", f"/api/admin/transactions/{tid}/reject/", long_note, tokens["superuser"]).status_code == 400
    note = {"note": "card reported stolen"}
    response = api.call("POST", f"/api/admin/transactions/{tid}/reject/", note, tokens["superuser"])
    assert response.status_code == 200 and response.data["status"] == "failed"
    payment = _payment(tid)
    assert payment.failure_reason is not None and "card reported stolen" in payment.failure_reason
    assert "merchant panel" in payment.failure_reason
    entry = _actions(payment.user_id, "payment_rejected")[0]
    assert entry.actor_id == tokens["superuser_id"] and "card reported stolen" in entry.metadata["reason"]

    corpus.answer(tid, "success")
    assert _return(api, "success", tid)[1]["status"] == "failed"
    assert api.call("POST", f"/api/admin/transactions/{tid}/verify/", None, tokens["superuser"]).data["status"] == (
        "failed"
    )
    assert _payment(tid).status == "failed" and not _user(payment.user_id).has_paid
    again = api.call("POST", f"/api/admin/transactions/{tid}/approve/", None, tokens["superuser"])
    assert (again.status_code, again.data["error"]["code"]) == (409, "invalid_state")


def test_review_decisions_answer_404_for_unknown_payments(api: Api, tokens: dict[str, str]) -> None:
    for decision in ("approve", "reject"):
        for tid in ("0" * 32, "not-an-id"):
            response = api.call("POST", f"/api/admin/transactions/{tid}/{decision}/", None, tokens["superuser"])
            assert response.status_code == 404, (decision, tid)


def test_while_a_payment_is_in_review_no_second_payment_and_no_deletion(
    api: Api, corpus: CorpusSearch, tokens: dict[str, str]
) -> None:
    """Paying again would charge twice; deleting would leave the decision without an account."""
    token, tid = _held(api, corpus, "alice")
    again = api.call("POST", "/api/initiate-payment/", {}, token)
    assert (again.status_code, again.data["error"]["code"]) == (409, "payment_in_review")
    leaving = api.call("DELETE", "/api/me/", {"password": "correct horse"}, token)
    assert (leaving.status_code, leaving.data["error"]["code"]) == (409, "account_busy")

    api.call("POST", f"/api/admin/transactions/{tid}/reject/", {}, tokens["superuser"])
    assert _user(_payment(tid).user_id).payments_in_review == 0
    assert _start(api, token)["status"] == "initiated"  # another card, another try


def test_a_review_decision_survives_transaction_conflicts(
    api: Api, corpus: CorpusSearch, tokens: dict[str, str]
) -> None:
    """DynamoDB cancelling every try answers 409 conflict (never a 500), and the payment waits on."""
    from chalicelib.core import db
    from tests.unit.conflicts import transaction_conflicts

    _, tid = _held(api, corpus, "alice")
    path = f"/api/admin/transactions/{tid}/approve/"
    with transaction_conflicts(db.CONFLICT_ATTEMPTS):
        busy = api.call("POST", path, None, tokens["superuser"])
    assert (busy.status_code, busy.data["error"]["code"]) == (409, "conflict")
    assert _payment(tid).status == "review"
    with transaction_conflicts(1):  # one conflict: the retry goes through
        assert api.call("POST", path, None, tokens["superuser"]).data["status"] == "success"
