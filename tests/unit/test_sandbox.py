"""The aamarPay sandbox emulator over real HTTP: wire format, hosted page, search API, faults.

Every reply the sandbox gives is held against the corpus of real reply shapes
(tests/aamarpay_replies.py): the same keys and the same value types, so the two cannot drift.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from html.parser import HTMLParser
from typing import Any

import pytest
import requests

from local.sandbox import FAULTS, SandboxServer
from local.sandbox_replies import USD_RATE
from tests import aamarpay_replies as corpus
from tests.stack import PROJECT_DIR, free_port

STORE_ID = "sandbox-test-store"
SIGNATURE_KEY = "sandbox-test-key-5f0c1e9d7a"
MERCHANT = "http://merchant.test/api"


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


def _record(server: SandboxServer, tran_id: str) -> dict[str, Any]:
    return _as_gateway_json(_search(server, request_id=tran_id))


def _as_gateway_json(reply: requests.Response) -> Any:
    """The JSON of a gateway answer, which (like the real one) is HTTP 200 labelled as HTML."""
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/html; charset=UTF-8"
    return json.loads(reply.text)


def _shape(value: Any) -> Any:
    """Keys and value types (JSON null stays apart from a string), what the corpus test compares."""
    if isinstance(value, dict):
        return {key: type(item).__name__ for key, item in value.items()}
    return type(value).__name__


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


def test_initiate_answers_string_true_and_a_paynow_url_labelled_as_html(server: SandboxServer) -> None:
    data = _as_gateway_json(_initiate(server, _body(_tran_id())))
    assert set(data) == {"result", "payment_url"}
    assert data["result"] == "true"
    assert re.fullmatch(re.escape(server.url) + r"/paynow\.php\?track=AAM\d{16}", data["payment_url"])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"store_id": "someone-else"}, "Invalid Store ID"),
        ({"store_id": None}, "Invalid Store ID"),
        ({"signature_key": "wrong"}, "Invalid Signature Key"),
        ({"signature_key": None}, "Invalid Signature Key"),
    ],
)
def test_bad_credentials_answer_result_false_and_a_message(
    server: SandboxServer, changes: dict[str, Any], message: str
) -> None:
    tran_id = _tran_id()
    assert _as_gateway_json(_initiate(server, _body(tran_id, **changes))) == {"result": False, "message": message}
    assert server.sandbox.transaction(tran_id) is None


def test_legacy_refusals_switch_gives_the_older_bare_strings(server: SandboxServer) -> None:
    server.sandbox.set_faults(legacy_refusals=True)
    assert _as_gateway_json(_initiate(server, _body(_tran_id(), store_id="other"))) == "Invalid Store ID"
    assert _as_gateway_json(_initiate(server, _body(_tran_id(), signature_key="x"))) == "Invalid Signature Key"
    assert _as_gateway_json(_initiate(server, _body(_tran_id())))["result"] == "true"  # only refusals change


def test_bad_key_switch_refuses_right_credentials_and_wears_off(server: SandboxServer) -> None:
    tran_id = _tran_id()
    server.sandbox.set_faults(initiate_bad_key=1)
    refused = _as_gateway_json(_initiate(server, _body(tran_id)))
    assert refused == {"result": False, "message": "Invalid Signature Key"}
    assert server.sandbox.transaction(tran_id) is None
    assert _as_gateway_json(_initiate(server, _body(tran_id)))["result"] == "true"


@pytest.mark.parametrize("body", ["store_id=x", "", "[1, 2]", '"a string"', "{not json"])
def test_a_body_neither_json_object_nor_form_answers_invalid_json_as_text(server: SandboxServer, body: str) -> None:
    reply = requests.post(f"{server.url}/jsonpost.php", data=body, timeout=5)
    assert (reply.status_code, reply.text) == (200, "invalid json")
    assert reply.headers["content-type"] == "text/html; charset=UTF-8"


def test_invalid_json_switch_refuses_a_good_body(server: SandboxServer) -> None:
    tran_id = _tran_id()
    server.sandbox.set_faults(initiate_invalid_json=1)
    assert _initiate(server, _body(tran_id)).text == "invalid json"
    assert server.sandbox.transaction(tran_id) is None
    assert _as_gateway_json(_initiate(server, _body(tran_id)))["result"] == "true"


@pytest.mark.parametrize("field", ["tran_id", "amount", "desc", "cus_phone", "cus_email", "fail_url", "type"])
def test_missing_required_field_answers_an_object_without_result(server: SandboxServer, field: str) -> None:
    for missing in (None, "  "):
        tran_id = _tran_id()
        reply = _initiate(server, _body(tran_id, **{field: missing}))
        assert _as_gateway_json(reply) == {field: f"{field} is required."}
        if field != "tran_id":
            assert server.sandbox.transaction(tran_id) is None


def test_address_fields_are_optional_and_unsent_ones_search_as_null(server: SandboxServer) -> None:
    address = ("cus_add1", "cus_add2", "cus_city", "cus_state", "cus_postcode", "cus_country")
    omitted, blank = _tran_id(), _tran_id()
    assert _as_gateway_json(_initiate(server, _body(omitted, **dict.fromkeys(address))))["result"] == "true"
    assert _as_gateway_json(_initiate(server, _body(blank, **dict.fromkeys(address, ""))))["result"] == "true"
    for tran_id in (omitted, blank):
        record = _record(server, tran_id)
        assert {name: record[name] for name in address} == dict.fromkeys(address)
    sent = _record(server, _started(server)[0])
    assert (sent["cus_add1"], sent["cus_city"], sent["cus_add2"]) == ("Road 1", "Dhaka", None)


@pytest.mark.parametrize("path", ["/index.php", "/jsonpost.php"])
def test_a_form_body_with_type_json_gets_the_same_json_answer(server: SandboxServer, path: str) -> None:
    tran_id = _tran_id()
    reply = requests.post(f"{server.url}{path}", data=_body(tran_id), timeout=5)
    data = _as_gateway_json(reply)
    assert set(data) == {"result", "payment_url"}
    assert data["result"] == "true"
    transaction = server.sandbox.transaction(tran_id)
    assert transaction is not None
    assert data["payment_url"].endswith(f"track={transaction.track}")
    assert transaction.fields["cus_name"] == "Alice <b>"
    refused = requests.post(f"{server.url}{path}", data=_body(_tran_id(), signature_key="wrong"), timeout=5)
    assert _as_gateway_json(refused) == {"result": False, "message": "Invalid Signature Key"}
    assert server.sandbox.hits["initiate"] == 2


def test_a_form_body_without_type_json_is_refused(server: SandboxServer) -> None:
    reply = requests.post(f"{server.url}/index.php", data=_body(_tran_id(), type="html"), timeout=5)
    assert _as_gateway_json(reply) == {"type": "Invalid Request Type."}


def test_the_pypi_aamarpay_client_initiates_against_the_sandbox(
    server: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """aamarpay 1.0.1 posts a form with type=json to its hard-coded `{base}/index.php`."""
    from aamarpay import _constants
    from aamarpay.aamarpay import aamarPay

    monkeypatch.setattr(_constants, "sandBoxUrl", f"{server.url}/index.php")
    tran_id = _tran_id()
    customer = {"customerName": "Alice", "customerEmail": "alice@example.com", "customerMobile": "01700000000"}
    urls = {
        "successUrl": f"{MERCHANT}/payment/success/",
        "failUrl": f"{MERCHANT}/payment/fail/",
        "cancelUrl": f"{MERCHANT}/payment/cancel/",
    }
    client = aamarPay(
        isSandbox=True, storeID=STORE_ID, signature=SIGNATURE_KEY, transactionID=tran_id, **customer, **urls
    )
    payment_url = client.payment()
    transaction = server.sandbox.transaction(tran_id)
    assert transaction is not None
    assert payment_url == f"{server.url}/paynow.php?track={transaction.track}"
    assert (transaction.fields["amount"], transaction.fields["cus_add1"]) == ("100", "")  # its defaults
    assert "Pay" in Page(requests.get(payment_url, timeout=5).text).buttons
    assert server.sandbox.hits["initiate"] == 1
    wrong = aamarPay(isSandbox=True, storeID=STORE_ID, signature="wrong", transactionID=_tran_id(), **urls)
    assert json.loads(wrong.payment()) == {"result": False, "message": "Invalid Signature Key"}


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
    data = _as_gateway_json(_initiate(server, _body(_tran_id(), **changes)))
    assert "result" not in data
    assert field in data


def test_amount_may_come_as_a_json_number(server: SandboxServer) -> None:
    assert _initiate(server, _body(_tran_id(), amount=100)).json()["result"] == "true"


def test_duplicate_tran_id_is_refused_with_the_gateways_spelling(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    reply = _initiate(server, _body(tran_id, amount="5.00"))
    assert _as_gateway_json(reply) == {"tran_id": "Dublicate Transaction ID Provided By You."}
    transaction = server.sandbox.transaction(tran_id)
    assert transaction is not None
    assert transaction.fields["amount"] == "100.00"
    assert payment_url.endswith(transaction.track)


def test_duplicate_switch_refuses_a_fresh_tran_id(server: SandboxServer) -> None:
    tran_id = _tran_id()
    server.sandbox.set_faults(initiate_duplicate=1)
    assert _as_gateway_json(_initiate(server, _body(tran_id))) == {
        "tran_id": "Dublicate Transaction ID Provided By You."
    }
    assert server.sandbox.transaction(tran_id) is None
    assert _as_gateway_json(_initiate(server, _body(tran_id)))["result"] == "true"


# --- hosted payment page -----------------------------------------------------------------


def test_payment_page_shows_amount_merchant_and_four_buttons(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    reply = requests.get(payment_url, timeout=5)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    page = Page(reply.text)
    assert page.buttons == ["Pay", "Pay (risky card)", "Fail", "Cancel"]
    assert "100.00 BDT" in page.text
    assert "charged as" not in page.text
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
    assert _record(server, tran_id)["pay_status"] == "Incomplete"


def _click(payment_url: str, action: str) -> requests.Response:
    return requests.post(payment_url, data={"action": action}, timeout=5, allow_redirects=False)


def _return_form(reply: requests.Response) -> tuple[dict[str, Any], dict[str, str]]:
    """The auto-submitting form of a Pay/Fail answer and its fields."""
    (form,) = Page(reply.text).forms
    return form, {name: attrs["value"] for name, attrs in form["inputs"].items()}


def test_pay_answers_an_auto_submitting_form_to_success_url(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    reply = _click(payment_url, "pay")
    assert reply.status_code == 200
    page = Page(reply.text)
    form, fields = _return_form(reply)
    assert form["action"] == f"{MERCHANT}/payment/success/"
    assert form["method"] == "post"
    assert form["enctype"] == "application/x-www-form-urlencoded"
    assert [button.get("type") for button in form["buttons"]] == ["submit"]  # the no-JS fallback
    assert any(f'getElementById("{form["id"]}").submit()' in script for script in page.scripts)
    assert all(attrs["type"] == "hidden" for attrs in form["inputs"].values())
    assert (fields["pay_status"], fields["status_code"], fields["pg_card_risklevel"]) == ("Successful", "2", "0")
    assert fields["mer_txnid"] == tran_id
    assert fields["pg_txnid"] == fields["epw_txnid"] == payment_url.rsplit("=", 1)[1]
    assert (fields["amount"], fields["amount_original"], fields["store_amount"]) == ("100.00", "100.00", "97.90")
    assert (fields["currency"], fields["currency_merchant"], fields["other_currency"]) == (
        "BDT",
        "BDT",
        "Not Available",
    )
    assert (fields["gateway_fee"], fields["reason"], fields["pg_error_code_details"]) == ("", *["Not Available"] * 2)
    assert "desc" not in fields
    assert fields["cus_name"] == "Alice <b>"  # escaped in HTML, intact once parsed
    assert (fields["opt_a"], fields["opt_b"]) == ("note", "Not-Available")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fields["pay_time"])
    record = _record(server, tran_id)
    assert (record["pay_status"], record["status_code"], record["error_code"]) == ("Successful", "2", "No")
    assert (record["risk_level"], record["risk_title"], record["ip"]) == ("0", "Safe", "127.0.0.1")


def test_a_paid_payment_cannot_be_clicked_again(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    _click(payment_url, "pay")
    for action in ("pay", "pay_risky", "fail", "cancel"):
        assert _click(payment_url, action).status_code == 409
    page = Page(requests.get(payment_url, timeout=5).text)
    assert page.buttons == []
    assert "already complete" in page.text
    assert _record(server, tran_id)["pay_status"] == "Successful"


def test_fail_posts_to_fail_url_and_the_page_stays_payable(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    form, fields = _return_form(_click(payment_url, "fail"))
    assert form["action"] == f"{MERCHANT}/payment/fail/"
    assert (fields["pay_status"], fields["status_code"], fields["store_amount"]) == ("Failed", "7", "0.00")
    assert fields["reason"] == "Customer declined the payment."
    record = _record(server, tran_id)
    assert (record["pay_status"], record["status_code"], record["error_code"]) == ("Failed", "7", "Yes")
    assert Page(requests.get(payment_url, timeout=5).text).buttons == ["Pay", "Pay (risky card)", "Fail", "Cancel"]
    _click(payment_url, "pay")
    assert _record(server, tran_id)["pay_status"] == "Successful"


def test_cancel_redirects_to_cancel_url_with_no_data_and_changes_nothing(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    reply = _click(payment_url, "cancel")
    assert reply.status_code == 303
    assert reply.headers["location"] == f"{MERCHANT}/payment/cancel/?transaction_id={tran_id}"
    assert reply.text.count("<form") == 0
    record = _record(server, tran_id)
    assert (record["pay_status"], record["status_code"]) == ("Incomplete", "0")  # no invented "Cancelled"
    _click(payment_url, "fail")
    _click(payment_url, "cancel")
    assert (_record(server, tran_id)["pay_status"]) == "Failed"
    assert Page(requests.get(payment_url, timeout=5).text).buttons[0] == "Pay"


def test_cancel_by_post_switch_posts_an_empty_form_to_cancel_url(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    server.sandbox.set_faults(cancel_by_post=1)
    reply = _click(payment_url, "cancel")
    assert reply.status_code == 200
    form, fields = _return_form(reply)
    assert (form["action"], form["method"], fields) == (
        f"{MERCHANT}/payment/cancel/?transaction_id={tran_id}",
        "post",
        {},
    )
    assert _click(payment_url, "cancel").status_code == 303  # worn off
    assert _record(server, tran_id)["pay_status"] == "Incomplete"


def test_pay_with_a_risky_card_succeeds_with_risk_level_1(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    form, fields = _return_form(_click(payment_url, "pay_risky"))
    assert form["action"] == f"{MERCHANT}/payment/success/"
    assert (fields["pay_status"], fields["pg_card_risklevel"]) == ("Successful", "1")
    record = _record(server, tran_id)
    assert (record["pay_status"], record["status_code"], record["risk_level"], record["risk_title"]) == (
        "Successful",
        "2",
        "1",
        "High",
    )


def test_risky_card_switch_makes_the_next_payment_risky_then_wears_off(server: SandboxServer) -> None:
    first, first_url = _started(server)
    second, second_url = _started(server)
    failed, failed_url = _started(server)
    server.sandbox.set_faults(risky_card=1)
    _click(failed_url, "fail")  # a failure does not use the switch up
    assert _return_form(_click(first_url, "pay"))[1]["pg_card_risklevel"] == "1"
    assert _return_form(_click(second_url, "pay"))[1]["pg_card_risklevel"] == "0"
    assert [_record(server, tran_id)["risk_level"] for tran_id in (first, second, failed)] == ["1", "0", "0"]
    assert server.sandbox.set_faults()["risky_card"] is False


def test_an_expired_payment_is_no_longer_payable(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    reply = requests.post(f"{server.url}/__sandbox/settle", json={"tran_id": tran_id, "outcome": "expired"}, timeout=5)
    assert reply.json() == {"tran_id": tran_id, "pay_status": "Expired"}
    record = _record(server, tran_id)
    assert (record["pay_status"], record["status_code"], record["status_title"]) == (
        "Expired",
        "3",
        "Expired Transaction",
    )
    page = Page(requests.get(payment_url, timeout=5).text)
    assert (page.buttons, "expired" in page.text) == ([], True)
    assert _click(payment_url, "pay").status_code == 410
    server.sandbox.settle(tran_id, paid=True)  # expiry is final
    assert _record(server, tran_id)["pay_status"] == "Expired"


# --- currency ------------------------------------------------------------------------------


def test_a_usd_payment_is_reported_in_taka_with_the_merchants_figures_beside(server: SandboxServer) -> None:
    assert Decimal(corpus.USD_RATE) == USD_RATE
    tran_id = _tran_id()
    _as_gateway_json(_initiate(server, _body(tran_id, amount="10.00", currency="USD")))
    transaction = server.sandbox.transaction(tran_id)
    assert transaction is not None
    payment_url = f"{server.url}/paynow.php?track={transaction.track}"
    assert "10.00 USD (charged as 1225.00 BDT)" in Page(requests.get(payment_url, timeout=5).text).text
    _, fields = _return_form(_click(payment_url, "pay"))
    record = _record(server, tran_id)
    for reply in (fields, record):
        assert (reply["currency"], reply["amount"], reply["convertion_rate"]) == ("BDT", "1225.00", "122.50")
        assert (reply["currency_merchant"], reply["amount_original"], reply["amount_currency"]) == (
            "USD",
            "10.00",
            "10.00",
        )
        assert reply["other_currency"] == "10.00"
    assert (record["amount_bdt"], record["store_amount"], record["processing_charge"]) == (
        "1225.00",
        "1199.27",
        "25.73",
    )
    assert _shape(record) == _shape(corpus.search_record(tran_id, STORE_ID, amount="10.00", currency="USD"))


# --- search API ------------------------------------------------------------------------------


def test_search_of_an_unfinished_payment_is_incomplete(server: SandboxServer) -> None:
    tran_id, _ = _started(server)
    record = _record(server, tran_id)
    assert (record["pay_status"], record["status_code"], record["error_code"]) == ("Incomplete", "0", "Yes")
    assert (record["mer_txnid"], record["amount"], record["currency"], record["store_id"]) == (
        tran_id,
        "100.00",
        "BDT",
        STORE_ID,
    )
    assert (record["amount_original"], record["currency_merchant"], record["other_currency"]) == ("100.00", "BDT", None)
    assert (record["opt_a"], record["opt_b"], record["cus_fax"], record["ship_name"]) == (
        "note",
        "Not-Available",
        None,
        None,
    )


def _corpus_reply(name: str, tran_id: str, **money: str) -> corpus.Reply:
    return corpus.search_reply(name, tran_id, STORE_ID, **money)


@pytest.mark.parametrize(
    ("name", "arrange"),
    [
        ("success", lambda sandbox, tid: sandbox.settle(tid, paid=True)),
        ("success_2021", lambda sandbox, tid: (sandbox.settle(tid, paid=True), sandbox.set_faults(search_legacy=True))),
        ("risky", lambda sandbox, tid: sandbox.settle(tid, paid=True, risky=True)),
        ("failed", lambda sandbox, tid: sandbox.settle(tid, paid=False)),
        ("expired", lambda sandbox, tid: sandbox.expire(tid)),
        ("incomplete", lambda sandbox, tid: None),
        ("invalid_data", lambda sandbox, tid: sandbox.set_faults(search_unknown=True)),
    ],
)
def test_every_search_reply_has_the_shape_of_the_corpus(server: SandboxServer, name: str, arrange: Any) -> None:
    tran_id = _tran_id()
    # As our client initiates: no cus_add2 / cus_state / cus_postcode, so the gateway keeps null.
    _initiate(server, _body(tran_id, opt_a=None))
    arrange(server.sandbox, tran_id)
    real = _corpus_reply(name, tran_id)
    record = _record(server, tran_id)
    assert _shape(record) == _shape(real.json())
    if name == "invalid_data":
        assert record == real.json()
    else:
        expected = real.json()
        fields = ("pay_status", "status_code", "risk_level", "risk_title", "error_code", "currency", "amount")
        assert {field: record[field] for field in fields} == {field: expected[field] for field in fields}


def test_search_with_wrong_credentials_answers_the_plain_text_of_the_corpus(server: SandboxServer) -> None:
    tran_id, _ = _started(server)
    real = _corpus_reply("bad_credentials", tran_id)
    for params in ({"store_id": "other"}, {"signature_key": "wrong"}, {"store_id": ""}, {"signature_key": ""}):
        reply = _search(server, request_id=tran_id, **params)
        assert (reply.status_code, reply.headers["content-type"], reply.text) == (200, real.content_type, real.body)
    server.sandbox.set_faults(search_bad_credentials=1)
    assert _search(server, request_id=tran_id).text == real.body
    assert _record(server, tran_id)["mer_txnid"] == tran_id


def test_search_of_an_unknown_request_id_is_invalid_data(server: SandboxServer) -> None:
    assert _record(server, "never-initiated") == {
        "request_id": "never-initiated",
        "store_id": STORE_ID,
        "status": "Invalid-Data",
    }
    assert _record(server, "")["status"] == "Invalid-Data"
    assert _search(server, request_id="never-initiated", type="xml").text == "Invalid Request Type"


def test_the_return_form_has_the_shape_of_the_corpus(server: SandboxServer) -> None:
    tran_id, payment_url = _started(server)
    _, failed_url = _started(server)
    real = _shape(corpus.return_form(tran_id, STORE_ID))
    assert _shape(_return_form(_click(payment_url, "pay"))[1]) == real
    assert _shape(_return_form(_click(failed_url, "fail"))[1]) == real


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        ("ok", lambda server: _initiate(server, _body(_tran_id()))),
        ("bad_key", lambda server: _initiate(server, _body(_tran_id(), signature_key="wrong"))),
        (
            "bad_store_legacy",
            lambda server: (
                server.sandbox.set_faults(legacy_refusals=True),
                _initiate(server, _body(_tran_id(), store_id="other")),
            )[1],
        ),
        ("duplicate", lambda server: _initiate(server, _body(_started(server)[0]))),
        ("invalid_json", lambda server: requests.post(f"{server.url}/jsonpost.php", data="{", timeout=5)),
    ],
)
def test_every_initiation_reply_has_the_shape_of_the_corpus(server: SandboxServer, name: str, answer: Any) -> None:
    (real,) = [reply for reply in corpus.INITIATION_REPLIES if reply.name == name]
    reply = answer(server)
    assert (reply.status_code, reply.headers["content-type"]) == (real.status, real.content_type)
    if name == "invalid_json":
        assert reply.text == real.body
    elif name == "ok":
        assert _shape(reply.json()) == _shape(real.json())
    else:
        assert reply.json() == real.json()


def test_settle_without_a_browser_changes_only_the_search_reply(server: SandboxServer) -> None:
    paid, _ = _started(server)
    failed, _ = _started(server)
    risky, _ = _started(server)
    server.sandbox.settle(paid, paid=True)
    reply = requests.post(f"{server.url}/__sandbox/settle", json={"tran_id": failed, "outcome": "failed"}, timeout=5)
    assert reply.json() == {"tran_id": failed, "pay_status": "Failed"}
    body = {"tran_id": risky, "outcome": "paid", "risky": True}
    assert requests.post(f"{server.url}/__sandbox/settle", json=body, timeout=5).json()["pay_status"] == "Successful"
    assert _record(server, paid)["status_code"] == "2"
    assert _record(server, failed)["status_code"] == "7"
    assert (_record(server, risky)["risk_level"], _record(server, paid)["risk_level"]) == ("1", "0")
    server.sandbox.settle(paid, paid=False)  # a paid payment stays paid
    server.sandbox.expire(paid)
    assert _record(server, paid)["pay_status"] == "Successful"
    assert server.sandbox.hits["pay_action"] == 0


def test_settle_control_api_refuses_bad_requests(server: SandboxServer) -> None:
    url = f"{server.url}/__sandbox/settle"
    assert requests.post(url, json={"tran_id": "nope", "outcome": "paid"}, timeout=5).status_code == 404
    assert requests.post(url, json={"tran_id": "nope", "outcome": "expired"}, timeout=5).status_code == 404
    assert requests.post(url, json={"tran_id": "nope", "outcome": "maybe"}, timeout=5).status_code == 400
    assert requests.post(url, json={"tran_id": "x", "outcome": "paid", "risky": "yes"}, timeout=5).status_code == 400
    assert requests.post(url, data="not json", timeout=5).status_code == 400
    with pytest.raises(KeyError):
        server.sandbox.settle("nope", paid=True)
    with pytest.raises(KeyError):
        server.sandbox.expire("nope")


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
    assert _record(server, tran_id)["status"] == "Invalid-Data"


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
    assert _record(server, tran_id)["pay_status"] == "Incomplete"


def test_search_overrides_shape_the_reply(server: SandboxServer) -> None:
    tran_id, _ = _started(server)
    server.sandbox.set_faults(search_status="Successful", search_amount="1.00", search_store="another-store")
    record = _record(server, tran_id)
    assert (record["pay_status"], record["status_code"], record["error_code"]) == ("Successful", "2", "No")
    assert (record["amount"], record["amount_original"], record["store_id"]) == ("1.00", "1.00", "another-store")
    server.sandbox.set_faults(search_currency="USD")
    record = _record(server, tran_id)
    assert (record["currency"], record["currency_merchant"], record["amount"]) == ("BDT", "USD", "122.50")
    server.sandbox.set_faults(search_amount="not money")
    assert (_record(server, tran_id)["amount"], _record(server, tran_id)["amount_original"]) == ("not money",) * 2
    server.sandbox.set_faults(search_risk="1")
    assert (_record(server, tran_id)["risk_level"], _record(server, tran_id)["risk_title"]) == ("1", "High")
    expected = {"Expired": "3", "Failed": "7", "Incomplete": "0", "Pending": "0"}
    for status, code in expected.items():
        server.sandbox.set_faults(search_status=status)
        assert _record(server, tran_id)["status_code"] == code


def test_search_unknown_and_garbage_faults(server: SandboxServer) -> None:
    tran_id, _ = _started(server)
    server.sandbox.set_faults(search_unknown=1)
    assert _record(server, tran_id) == {"request_id": tran_id, "store_id": STORE_ID, "status": "Invalid-Data"}
    assert _record(server, tran_id)["mer_txnid"] == tran_id
    server.sandbox.set_faults(search_garbage=1)
    garbage = _search(server, request_id=tran_id)
    assert garbage.status_code == 200
    with pytest.raises(ValueError, match=r"Expecting|Unterminated"):
        garbage.json()


def test_search_legacy_switch_gives_every_value_as_a_string(server: SandboxServer) -> None:
    tran_id, _ = _started(server)
    server.sandbox.settle(tran_id, paid=True)
    server.sandbox.set_faults(search_legacy=True)
    record = _record(server, tran_id)
    assert all(isinstance(value, str) for value in record.values())
    assert "amount_original" not in record
    assert (record["error_code"], record["cus_add2"]) == ("0000", "")


def test_search_timeout_sleeps_then_answers(server: SandboxServer) -> None:
    tran_id, _ = _started(server)
    server.sandbox.set_faults(search_timeout=1, delay_seconds=0.2)
    started = time.monotonic()
    assert _record(server, tran_id)["mer_txnid"] == tran_id
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
        assert reply.text == "Store_id & signature key not matched"  # no credentials given
    finally:
        process.terminate()
        process.wait(timeout=5)
