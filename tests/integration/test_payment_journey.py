"""The real local stack over HTTP: pay on the sandbox's hosted page, come back, upload is unlocked.

The browser's last hop (the sandbox's auto-submitting form, or its cancel redirect) is replayed
with `requests` exactly as a browser sends it: a form-encoded POST with no token and no header
of ours, not following our 303.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import requests

from chalicelib.core.config import SANDBOX_SIGNATURE_KEY
from tests.aamarpay_browser import press
from tests.stack import start_stack

pytestmark = pytest.mark.integration


def _signed_up(stack: Any, username: str) -> dict[str, str]:
    credentials = {"username": username, "password": f"{username} password"}
    registered = requests.post(stack.url("/api/register/"), json={**credentials, "email": f"{username}@example.com"})
    assert registered.status_code == 201, registered.text
    tokens = requests.post(stack.url("/api/login/"), json=credentials).json()
    return {"Authorization": f"Bearer {tokens['access']}"}


def _initiate(stack: Any, bearer: dict[str, str], **headers: str) -> dict[str, Any]:
    response = requests.post(stack.url("/api/initiate-payment/"), json={}, headers={**bearer, **headers})
    assert response.status_code == 201, response.text
    return response.json()


def _me(stack: Any, bearer: dict[str, str]) -> dict[str, Any]:
    return requests.get(stack.url("/api/me/"), headers=bearer).json()["user"]


def _activity(stack: Any, bearer: dict[str, str], action: str) -> list[dict[str, Any]]:
    entries = requests.get(stack.url("/api/activity/"), headers=bearer).json()["items"]
    return [entry for entry in entries if entry["action"] == action]


def test_pay_on_the_hosted_page_and_come_back(stack: Any) -> None:
    bearer = _signed_up(stack, "payer")
    started = _initiate(stack, bearer, **{"Idempotency-Key": "journey-1"})
    assert started["payment_url"].startswith(stack.sandbox + "/paynow.php?track=")
    assert _initiate(stack, bearer, **{"Idempotency-Key": "journey-1"}) == started

    hop = press(started["payment_url"], "pay")
    assert (hop.method, hop.url) == ("POST", stack.url("/api/payment/success/"))
    back = requests.post(hop.url, data=hop.form, allow_redirects=False)  # form-encoded, no token

    tid = started["transaction_id"]
    assert back.status_code == 303, back.text
    assert back.headers["Location"] == stack.url(f"/dashboard/?payment=success&transaction_id={tid}")
    assert _me(stack, bearer)["has_paid"] is True
    listed = requests.get(stack.url("/api/transactions/"), headers=bearer).json()["items"]
    assert [(p["transaction_id"], p["status"]) for p in listed] == [(tid, "success")]
    assert listed[0]["gateway_transaction_id"] == hop.form["pg_txnid"]
    actions = [a["action"] for a in requests.get(stack.url("/api/activity/"), headers=bearer).json()["items"]]
    assert actions.count("payment_success") == 1 and "payment_initiated" in actions

    again = requests.post(stack.url("/api/initiate-payment/"), json={}, headers=bearer)
    assert (again.status_code, again.json()["error"]["code"]) == (409, "already_paid")


def test_forged_success_post_changes_nothing(stack: Any) -> None:
    bearer = _signed_up(stack, "forger")
    tid = _initiate(stack, bearer)["transaction_id"]
    forged = {
        "pay_status": "Successful",
        "status_code": "2",
        "mer_txnid": tid,
        "pg_txnid": "AAM1604470136103451",
        "store_id": "aamarpaytest",
        "amount": "100.00",
        "currency": "BDT",
    }
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    as_browser = requests.post(stack.url("/api/payment/success/"), data=forged, allow_redirects=False)
    assert as_browser.status_code == 303
    assert as_browser.headers["Location"] == stack.url(f"/dashboard/?payment=invalid&transaction_id={tid}")
    as_json = requests.post(
        stack.url("/api/payment/success/"), data=urlencode(forged), headers={**form, "Accept": "application/json"}
    )
    # Inside the payment's 10 s search window the gateway is not asked again: the stored state is answered.
    assert (as_json.status_code, as_json.json()) == (200, {"transaction_id": tid, "status": "initiated"})

    assert _me(stack, bearer)["has_paid"] is False
    payment = requests.get(stack.url(f"/api/transactions/{tid}/"), headers=bearer).json()
    assert payment["status"] == "initiated"
    actions = [a["action"] for a in requests.get(stack.url("/api/activity/"), headers=bearer).json()["items"]]
    assert actions.count("payment_callback_rejected") == 1
    assert SANDBOX_SIGNATURE_KEY not in stack.logs()


def test_cancel_on_the_hosted_page(stack: Any) -> None:
    bearer = _signed_up(stack, "canceller")
    started = _initiate(stack, bearer)
    hop = press(started["payment_url"], "cancel")
    assert hop.method == "GET"
    back = requests.get(hop.url, allow_redirects=False)
    tid = started["transaction_id"]
    assert back.headers["Location"] == stack.url(f"/dashboard/?payment=cancelled&transaction_id={tid}")
    assert _me(stack, bearer)["has_paid"] is False


def test_scheduled_reconciler_settles_a_payment_paid_without_a_return(tmp_path: Path) -> None:
    """Its own stack: re-check payments at once (not after 2 min), scheduler every second."""
    stack = start_stack(tmp_path / "stack.log", extra_env={"PAYMENT_RECHECK_AFTER_SECONDS": "0"})
    try:
        bearer = _signed_up(stack, "tabcloser")
        tid = _initiate(stack, bearer)["transaction_id"]
        settled = requests.post(stack.sandbox + "/__sandbox/settle", json={"tran_id": tid, "outcome": "paid"})
        assert settled.status_code == 200  # paid at the gateway; the browser never comes back

        # The job's own event, read through the API: /api/me and /api/activity never ask the
        # gateway, so only the job can have settled it (its log line may not be written yet).
        deadline = time.monotonic() + 30
        while not (success := _activity(stack, bearer, "payment_success")):
            assert time.monotonic() < deadline, stack.logs()[-3000:]
            time.sleep(0.2)
        assert [a["metadata"]["via"] for a in success] == ["check"]
        assert _me(stack, bearer)["has_paid"] is True
    finally:
        stack.stop()
