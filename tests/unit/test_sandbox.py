"""The aamarPay sandbox emulator over real HTTP: wire format, hosted page, search API, faults."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from typing import Any

import pytest
import requests

from local.sandbox import FAULTS, SandboxServer
from tests.stack import PROJECT_DIR, free_port

STORE_ID = "sandbox-test-store"
SIGNATURE_KEY = "sandbox-test-key-5f0c1e9d7a"
MERCHANT = "http://merchant.test/api"

RETURN_FIELDS = {
    *("pay_status", "status_code", "mer_txnid", "pg_txnid", "epw_txnid", "store_id", "merchant_id"),
    *("amount", "store_amount", "currency", "currency_merchant", "convertion_rate", "pay_time", "bank_txn"),
    *("card_type", "card_number", "card_holder", "pg_card_bank_name", "pg_card_bank_country"),
    *("pg_service_charge_bdt", "pg_service_charge_usd", "pg_card_risklevel", "pg_error_code_details"),
    *("ip_address", "cus_name", "cus_email", "cus_phone", "desc", "success_url", "fail_url"),
    *("opt_a", "opt_b", "opt_c", "opt_d", "reason"),
}
SEARCH_FIELDS = {
    *("pg_txnid", "mer_txnid", "store_id", "merchant_id", "pay_status", "status_code", "status_title"),
    *("amount", "amount_bdt", "amount_currency", "rec_amount", "processing_ratio", "processing_charge"),
    *("currency", "currency_merchant", "convertion_rate", "payment_type", "payment_processor", "bank_trxid"),
    *("approval_code", "cardnumber", "error_code", "error_title", "risk_title", "risk_level", "date"),
    *("date_processed", "ip", "cus_name", "cus_email", "cus_phone", "cus_add1", "cus_city", "cus_country"),
    *("ship_name", "ship_add1", "ship_city", "ship_country", "desc", "opt_a", "opt_b", "opt_c", "opt_d"),
    *("verify_status", "call_type", "checkout_status", "email_send", "doc_recived"),
}


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(store_id=STORE_ID, signature_key=SIGNATURE_KEY, delay_seconds=0.4) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(server: SandboxServer) -> None:
    server.sandbox.reset()


def _tran_id() -> str:
    return uuid.uuid4().hex


def _body(tran_id: str, /, **changes: Any) -> dict[str, Any]:
    body = {
        "store_id": STORE_ID,
        "signature_key": SIGNATURE_KEY,
        "tran_id": tran_id,
        "amount": "100.00",
        "currency": "BDT",
        "desc": "Upload access",
        "cus_name": "Alice <b>",
        "cus_email": "alice@example.com",
        "cus_phone": "01700000000",
        "cus_add1": "Road 1",
        "cus_add2": "Block B",
        "cus_city": "Dhaka",
        "cus_country": "Bangladesh",
        "success_url": f"{MERCHANT}/payment/success/",
        "fail_url": f"{MERCHANT}/payment/fail/",
        "cancel_url": f"{MERCHANT}/payment/cancel/?transaction_id={tran_id}",
        "type": "json",
        "opt_a": "note",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def _initiate(server: SandboxServer, body: dict[str, Any], timeout: float = 5) -> requests.Response:
    return requests.post(f"{server.url}/jsonpost.php", json=body, timeout=timeout)


def _started(server: SandboxServer, tran_id: str | None = None) -> tuple[str, str]:
    """A fresh transaction: (tran_id, payment_url)."""
    tran_id = tran_id or _tran_id()
    reply = _initiate(server, _body(tran_id))
    return tran_id, reply.json()["payment_url"]


def _search(server: SandboxServer, **params: str) -> requests.Response:
    query = {"store_id": STORE_ID, "signature_key": SIGNATURE_KEY, "type": "json", **params}
    return requests.get(f"{server.url}/api/v1/trxcheck/request.php", params=query, timeout=5)


class Page(HTMLParser):
    """Forms (with inputs and buttons), every button's accessible name, scripts and visible text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self.buttons: list[str] = []
        self.scripts: list[str] = []
        self.text = ""
        self._button: dict[str, str] | None = None
        self._in_script = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.forms.append({**values, "inputs": {}, "buttons": []})
        elif tag == "input":
            self.forms[-1]["inputs"][values["name"]] = values
        elif tag == "button":
            self._button = {**values, "label": ""}
        elif tag == "script":
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button is not None:
            self.buttons.append(self._button["label"].strip())
            if self.forms:
                self.forms[-1]["buttons"].append(self._button)
            self._button = None
        elif tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._button is not None:
            self._button["label"] += data
        elif self._in_script:
            self.scripts.append(data)
        else:
            self.text += data


# --- initiate ----------------------------------------------------------------------------


def test_initiate_answers_string_true_and_a_paynow_url(server: SandboxServer) -> None:
    reply = _initiate(server, _body(_tran_id()))
    assert reply.status_code == 200
    data = reply.json()
    assert set(data) == {"result", "payment_url"}
    assert data["result"] == "true"
    assert re.fullmatch(re.escape(server.url) + r"/paynow\.php\?track=AAM\d{16}", data["payment_url"])


@pytest.mark.parametrize(
    ("changes", "answer"),
    [
        ({"store_id": "someone-else"}, "Invalid Store ID"),
        ({"store_id": None}, "Invalid Store ID"),
        ({"signature_key": "wrong"}, "Invalid Signature Key"),
        ({"signature_key": None}, "Invalid Signature Key"),
    ],
)
def test_bad_credentials_answer_a_bare_string_with_http_200(
    server: SandboxServer, changes: dict[str, Any], answer: str
) -> None:
    tran_id = _tran_id()
    reply = _initiate(server, _body(tran_id, **changes))
    assert (reply.status_code, reply.json()) == (200, answer)
    assert server.sandbox.transaction(tran_id) is None


def test_non_json_body_is_refused_like_missing_credentials(server: SandboxServer) -> None:
    reply = requests.post(f"{server.url}/jsonpost.php", data="store_id=x", timeout=5)
    assert (reply.status_code, reply.json()) == (200, "Invalid Store ID")


@pytest.mark.parametrize("field", ["tran_id", "amount", "cus_phone", "cus_add1", "cus_add2", "cus_city", "fail_url"])
def test_missing_required_field_answers_an_object_without_result(server: SandboxServer, field: str) -> None:
    for missing in (None, "  "):
        reply = _initiate(server, _body(_tran_id(), **{field: missing}))
        assert reply.status_code == 200
        assert reply.json() == {field: f"{field} is required."}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"amount": "1,000.00"}, "amount"),
        ({"amount": "৳100"}, "amount"),
        ({"amount": "-5"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "10.005"}, "amount"),
        ({"currency": "EUR"}, "currency"),
        ({"tran_id": "x" * 33}, "tran_id"),
        ({"type": "xml"}, "type"),
        ({"success_url": "/relative/path"}, "success_url"),
        ({"cancel_url": "javascript:alert(1)"}, "cancel_url"),
    ],
)
def test_malformed_fields_are_refused(server: SandboxServer, changes: dict[str, str], field: str) -> None:
    reply = _initiate(server, _body(_tran_id(), **changes))
    data = reply.json()
    assert reply.status_code == 200
    assert "result" not in data
    assert field in data


def test_amount_may_come_as_a_json_number(server: SandboxServer) -> None:
    assert _initiate(server, _body(_tran_id(), amount=100)).json()["result"] == "true"


def test_duplicate_tran_id_is_refused_with_the_gateways_spelling(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    reply = _initiate(server, _body(tran_id, amount="5.00"))
    assert (reply.status_code, reply.json()) == (200, {"tran_id": "Dublicate Transaction ID Provided By You."})
    transaction = server.sandbox.transaction(tran_id)
    assert transaction is not None
    assert transaction.fields["amount"] == "100.00"
    assert payment_url.endswith(transaction.track)


# --- hosted payment page -----------------------------------------------------------------


def test_payment_page_shows_amount_merchant_and_three_buttons(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    reply = requests.get(payment_url, timeout=5)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    page = Page(reply.text)
    assert page.buttons == ["Pay", "Fail", "Cancel"]
    assert "100.00 BDT" in page.text
    assert STORE_ID in page.text
    assert tran_id in page.text
    (form,) = page.forms
    assert form["method"] == "post"


def test_unknown_track_is_not_found(server: SandboxServer) -> None:
    assert requests.get(f"{server.url}/paynow.php?track=AAM0000", timeout=5).status_code == 404
    assert requests.post(f"{server.url}/paynow.php?track=AAM0000", data={"action": "pay"}, timeout=5).status_code == 404


def test_unknown_action_is_refused(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    assert requests.post(payment_url, data={"action": "steal"}, timeout=5).status_code == 400
    assert _search(server, request_id=tran_id).json()["pay_status"] == "Pending"


def _click(payment_url: str, action: str) -> requests.Response:
    return requests.post(payment_url, data={"action": action}, timeout=5, allow_redirects=False)


def test_pay_answers_an_auto_submitting_form_to_success_url(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    reply = _click(payment_url, "pay")
    assert reply.status_code == 200
    page = Page(reply.text)
    (form,) = page.forms
    assert form["action"] == f"{MERCHANT}/payment/success/"
    assert form["method"] == "post"
    assert form["enctype"] == "application/x-www-form-urlencoded"
    assert [button.get("type") for button in form["buttons"]] == ["submit"]  # the no-JS fallback
    assert any(f'getElementById("{form["id"]}").submit()' in script for script in page.scripts)
    fields = {name: attrs["value"] for name, attrs in form["inputs"].items()}
    assert set(fields) == RETURN_FIELDS
    assert all(attrs["type"] == "hidden" for attrs in form["inputs"].values())
    assert (fields["pay_status"], fields["status_code"]) == ("Successful", "2")
    assert fields["mer_txnid"] == tran_id
    assert fields["pg_txnid"] == fields["epw_txnid"] == payment_url.rsplit("=", 1)[1]
    assert (fields["amount"], fields["store_amount"], fields["currency"]) == ("100.00", "97.90", "BDT")
    assert fields["cus_name"] == "Alice <b>"  # escaped in HTML, intact once parsed
    assert fields["opt_a"] == "note"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fields["pay_time"])
    record = _search(server, request_id=tran_id).json()
    assert (record["pay_status"], record["status_code"]) == ("Successful", "2")


def test_a_paid_payment_cannot_be_clicked_again(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    _click(payment_url, "pay")
    for action in ("pay", "fail", "cancel"):
        assert _click(payment_url, action).status_code == 409
    page = Page(requests.get(payment_url, timeout=5).text)
    assert page.buttons == []
    assert "already complete" in page.text
    assert _search(server, request_id=tran_id).json()["pay_status"] == "Successful"


def test_fail_posts_to_fail_url_and_the_page_stays_payable(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    (form,) = Page(_click(payment_url, "fail").text).forms
    assert form["action"] == f"{MERCHANT}/payment/fail/"
    fields = {name: attrs["value"] for name, attrs in form["inputs"].items()}
    assert set(fields) == RETURN_FIELDS
    assert (fields["pay_status"], fields["status_code"], fields["store_amount"]) == ("Failed", "7", "0.00")
    record = _search(server, request_id=tran_id).json()
    assert (record["pay_status"], record["status_code"]) == ("Failed", "7")
    assert Page(requests.get(payment_url, timeout=5).text).buttons == ["Pay", "Fail", "Cancel"]
    _click(payment_url, "pay")
    assert _search(server, request_id=tran_id).json()["pay_status"] == "Successful"


def test_cancel_redirects_to_cancel_url_with_no_data(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    reply = _click(payment_url, "cancel")
    assert reply.status_code == 303
    assert reply.headers["location"] == f"{MERCHANT}/payment/cancel/?transaction_id={tran_id}"
    assert reply.text.count("<form") == 0
    record = _search(server, request_id=tran_id).json()
    assert (record["pay_status"], record["status_code"]) == ("Cancelled", "7")


# --- search API ------------------------------------------------------------------------------


def test_search_of_an_unfinished_payment_is_pending_and_all_strings(server: SandboxServer) -> None:
    tran_id, _ = _started(server)
    reply = _search(server, request_id=tran_id)
    record = reply.json()
    assert reply.status_code == 200
    assert set(record) >= SEARCH_FIELDS
    assert all(isinstance(value, str) for value in record.values())
    assert (record["pay_status"], record["status_code"]) == ("Pending", "0")
    assert (record["mer_txnid"], record["amount"], record["currency"], record["store_id"]) == (
        tran_id,
        "100.00",
        "BDT",
        STORE_ID,
    )
    assert record["opt_a"] == "note"
    assert record["opt_b"] == "Not-Available"


def test_search_of_an_unknown_request_id_is_an_empty_object(server: SandboxServer) -> None:
    reply = _search(server, request_id="never-initiated")
    assert (reply.status_code, reply.json()) == (200, {})


@pytest.mark.parametrize("missing", ["request_id", "store_id", "signature_key", "type"])
def test_search_needs_all_four_parameters(server: SandboxServer, missing: str) -> None:
    tran_id, _ = _started(server)
    params = {"request_id": tran_id, "store_id": STORE_ID, "signature_key": SIGNATURE_KEY, "type": "json"}
    del params[missing]
    reply = requests.get(f"{server.url}/api/v1/trxcheck/request.php", params=params, timeout=5)
    assert reply.status_code == 200
    assert isinstance(reply.json(), str)


@pytest.mark.parametrize(
    ("params", "answer"),
    [
        ({"store_id": "other"}, "Invalid Store ID"),
        ({"signature_key": "wrong"}, "Invalid Signature Key"),
        ({"type": "xml"}, "Invalid Request Type"),
    ],
)
def test_search_with_bad_parameters_answers_a_bare_string(
    server: SandboxServer, params: dict[str, str], answer: str
) -> None:
    tran_id, _ = _started(server)
    assert _search(server, request_id=tran_id, **params).json() == answer


def test_settle_without_a_browser_changes_only_the_search_reply(server: SandboxServer) -> None:
    paid, _ = _started(server)
    failed, _ = _started(server)
    server.sandbox.settle(paid, paid=True)
    reply = requests.post(f"{server.url}/__sandbox/settle", json={"tran_id": failed, "outcome": "failed"}, timeout=5)
    assert reply.json() == {"tran_id": failed, "pay_status": "Failed"}
    assert _search(server, request_id=paid).json()["status_code"] == "2"
    assert _search(server, request_id=failed).json()["status_code"] == "7"
    server.sandbox.settle(paid, paid=False)  # a paid payment stays paid
    assert _search(server, request_id=paid).json()["pay_status"] == "Successful"
    assert server.sandbox.hits["pay_action"] == 0


def test_settle_control_api_refuses_bad_requests(server: SandboxServer) -> None:
    url = f"{server.url}/__sandbox/settle"
    assert requests.post(url, json={"tran_id": "nope", "outcome": "paid"}, timeout=5).status_code == 404
    assert requests.post(url, json={"tran_id": "nope", "outcome": "maybe"}, timeout=5).status_code == 400
    with pytest.raises(KeyError):
        server.sandbox.settle("nope", paid=True)


# --- faults ----------------------------------------------------------------------------------


def test_fault_control_api_lists_sets_and_validates(server: SandboxServer) -> None:
    url = f"{server.url}/__sandbox/faults"
    assert set(requests.get(url, timeout=5).json()) == set(FAULTS)
    assert requests.post(url, json={"search_500": 2, "search_amount": "1.00"}, timeout=5).json()["search_500"] == 2
    for bad in ({"no_such_fault": True}, {"search_500": "yes"}, {"search_amount": 5}, {"delay_seconds": -1}):
        reply = requests.post(url, json=bad, timeout=5)
        assert reply.status_code == 400, bad
        assert "error" in reply.json()
    assert requests.post(url, data="not json", timeout=5).status_code == 400
    assert requests.post(url, json={"search_amount": None}, timeout=5).json()["search_amount"] is None


def test_counted_switch_wears_off_and_reset_clears_everything(server: SandboxServer) -> None:
    tran_id, _ = _started(server)
    server.sandbox.set_faults(search_500=2)
    assert [_search(server, request_id=tran_id).status_code for _ in range(3)] == [500, 500, 200]
    server.sandbox.set_faults(search_500=True)
    assert requests.post(f"{server.url}/__sandbox/reset", timeout=5).json() == {"reset": True}
    assert _search(server, request_id=tran_id).json() == {}


def test_initiate_500_and_garbage_create_nothing(server: SandboxServer) -> None:
    tran_id = _tran_id()
    server.sandbox.set_faults(initiate_500=1, initiate_garbage=1)
    first = _initiate(server, _body(tran_id))
    assert first.status_code == 500
    assert first.headers["content-type"].startswith("text/html")
    second = _initiate(server, _body(tran_id))
    assert second.status_code == 200
    assert second.headers["content-type"].startswith("text/html")
    assert server.sandbox.transaction(tran_id) is None
    assert _initiate(server, _body(tran_id)).json()["result"] == "true"


def test_initiate_timeout_still_creates_the_transaction(server: SandboxServer) -> None:
    tran_id = _tran_id()
    server.sandbox.set_faults(initiate_timeout=1)
    with pytest.raises(requests.Timeout):
        _initiate(server, _body(tran_id), timeout=0.1)
    deadline = time.monotonic() + 3
    while server.sandbox.transaction(tran_id) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _search(server, request_id=tran_id).json()["pay_status"] == "Pending"


def test_search_faults_shape_the_reply(server: SandboxServer) -> None:
    tran_id, _ = _started(server)
    server.sandbox.set_faults(
        search_status="Successful", search_amount="1.00", search_currency="USD", search_store="another-store"
    )
    record = _search(server, request_id=tran_id).json()
    assert (record["pay_status"], record["status_code"], record["amount"]) == ("Successful", "2", "1.00")
    assert (record["currency"], record["store_id"]) == ("USD", "another-store")
    server.sandbox.set_faults(search_status="Expired")
    assert _search(server, request_id=tran_id).json()["status_code"] == "0"
    server.sandbox.set_faults(search_unknown="list")
    assert _search(server, request_id=tran_id).json() == []
    server.sandbox.set_faults(search_unknown=True)
    assert _search(server, request_id=tran_id).json() == {}
    server.sandbox.set_faults(search_unknown=False, search_garbage=1)
    garbage = _search(server, request_id=tran_id)
    assert garbage.status_code == 200
    with pytest.raises(ValueError, match=r"Expecting|Unterminated"):
        garbage.json()


def test_search_timeout_sleeps_then_answers(server: SandboxServer) -> None:
    tran_id, _ = _started(server)
    server.sandbox.set_faults(search_timeout=1, delay_seconds=0.2)
    started = time.monotonic()
    assert _search(server, request_id=tran_id).json()["mer_txnid"] == tran_id
    assert time.monotonic() - started >= 0.2


# --- running alone ---------------------------------------------------------------------------


def test_runs_alone_as_a_module() -> None:
    unused_port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "local.sandbox", "--port", str(unused_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=PROJECT_DIR,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{unused_port}" in banner
        reply = requests.get(f"http://127.0.0.1:{unused_port}/api/v1/trxcheck/request.php", timeout=5)
        assert isinstance(reply.json(), str)  # the four parameters are missing
    finally:
        process.terminate()
        process.wait(timeout=5)
