"""The browser's returns from aamarPay (success, fail, cancel): a hint naming a payment, never proof.

Identity comes from our table, the verdict from the search API (`settlement.settle`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from chalicelib.core import activity, clock, logs, metrics
from chalicelib.core.models import Payment
from chalicelib.payments.settlement import (
    REJECTED,
    Check,
    Occasion,
    Status,
    Verdict,
    claim_search,
    holds_cancel_token,
    is_final,
    search,
    settle,
)

RETURNS = (Occasion.SUCCESS_RETURN, Occasion.FAIL_RETURN, Occasion.CANCEL_RETURN)

log = logs.get("payments")


@dataclass(frozen=True)
class ReturnOutcome:
    """What a gateway return answers: the current state, or `valid=False` for a rejected one."""

    valid: bool
    transaction_id: str | None
    status: str | None
    message: str

    def dashboard_url(self, base_url: str) -> str:
        params = {"payment": self.status if self.valid else "invalid", "transaction_id": self.transaction_id or ""}
        return f"{base_url}/dashboard/?{urlencode(params)}"


def handle_return(kind: str, form: dict[str, str]) -> ReturnOutcome:
    """A browser return from aamarPay: the form only names a payment; the search API decides.

    When the gateway cannot be asked, or was asked about this payment in the last 10 seconds,
    nothing changes and the answer is the current state (normally `initiated`); the reconciler
    checks again within minutes. A cancel must carry the token of the cancel URL we handed the
    gateway: one that lacks it (someone who knows only the id) is answered like an unknown id.
    """
    occasion = Occasion(kind)
    if occasion not in RETURNS:
        raise ValueError(f"not a gateway return: {kind!r}")
    cancelling = occasion is Occasion.CANCEL_RETURN
    claimed = form.get("transaction_id" if cancelling else "mer_txnid") or ""
    token = (form.get("token") or "") if cancelling else None
    payment, slot = claim_search(claimed, cancel_token=token)
    if payment is None or (token is not None and not holds_cancel_token(payment, token)):
        _reject(None, claimed, occasion, "unknown_transaction")
        return ReturnOutcome(False, claimed if clock.is_id(claimed) else None, None, "Unknown transaction.")
    if is_final(payment):  # nothing the gateway could say changes it
        return _answer(payment)
    if not slot:
        return _answer(payment, "The payment was checked moments ago; it will be checked again shortly.")
    asked = search(payment, f"{occasion.value}_return")
    if not asked.answered:
        return _answer(payment, "The gateway could not confirm the payment yet; it will be checked again shortly.")
    check = settle(payment, asked.result, occasion)
    if check.verdict is Verdict.MISMATCH or (
        occasion is Occasion.SUCCESS_RETURN and check.payment.status not in (Status.SUCCESS, Status.REVIEW)
    ):
        _reject(payment.user_id, payment.transaction_id, occasion, check.verdict.value, check)
        return ReturnOutcome(
            False, payment.transaction_id, check.payment.status, "The gateway did not confirm this payment."
        )
    return _answer(check.payment)


_MESSAGES: dict[str, str] = {
    Status.SUCCESS: "The payment succeeded.",
    Status.REVIEW: "The payment is under review; uploads open once it is approved.",
}


def _answer(payment: Payment, message: str | None = None) -> ReturnOutcome:
    """The payment's current state, with `message` or the one its status says."""
    if message is None:
        refused = payment.review_decision == REJECTED
        message = _MESSAGES.get(payment.status) or (
            "The payment was refused after review." if refused else f"The payment is {payment.status}."
        )
    return ReturnOutcome(True, payment.transaction_id, payment.status, message)


# Why a return was rejected, as the metric's closed list of reasons: a return naming no
# payment of ours, a gateway answer that is not our record, or a success the gateway denies.
REJECTION_METRIC_REASONS = {"unknown_transaction": "unknown", Verdict.MISMATCH.value: "mismatch"}


def _reject(
    user_id: str | None, transaction_id: str, occasion: Occasion, reason: str, check: Check | None = None
) -> None:
    """A security event: a return we could not verify (never the form itself, never secrets)."""
    metadata: dict[str, Any] = {"kind": occasion.value, "reason": reason, "transaction_id": transaction_id[:64]}
    if check is not None:
        metadata["mismatched"] = list(check.mismatched)
        metadata.update(check.details)
    activity.record("payment_callback_rejected", user_id, metadata=metadata)
    metrics.count("ReturnsRejected", reason=REJECTION_METRIC_REASONS.get(reason, "forged"))
    logs.event(log, "payment return rejected", logging.WARNING, **metadata)
