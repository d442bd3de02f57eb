"""Where every payment is settled: the verdict on the gateway's answer, the transition rule, `settle`.

Returns, the reconciler, read-time re-checks, the admin's verify, the review decisions and a
refused initiation all end here. Each move is one conditional TransactWrite (payment, user's
`has_paid`, activity entry): a lost race changes nothing. `success` is final; a verified success
lifts `failed`/`cancelled`/`expired` (money taken is never lost), a risky one goes to `review`
instead, which only a superuser's decision ends. Any other move starts from `initiated`.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.update import Action

from chalicelib.core import activity, clock, counters, db, logs, metrics
from chalicelib.core.config import app_secrets
from chalicelib.core.db import conflicted, transact_write, transaction_lost_condition
from chalicelib.core.models import Payment, User, status_day
from chalicelib.mail import jobs
from chalicelib.payments import aamarpay

SEARCH_WINDOW_SECONDS = 10  # however many returns arrive, the gateway hears about a payment this rarely
CHECK_QUEUE = "due"  # the reconciler index's one partition: payments that still need re-checks

log = logs.get("payments")


class Status(enum.StrEnum):
    INITIATED = "initiated"
    SUCCESS = "success"
    REVIEW = "review"  # a verified success the card's issuer flagged: granted only by a superuser
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


ACTIONS = {
    Status.SUCCESS: "payment_success",
    Status.REVIEW: "payment_review",
    Status.FAILED: "payment_failed",
    Status.CANCELLED: "payment_cancelled",
    Status.EXPIRED: "payment_expired",
}


class Occasion(enum.StrEnum):
    """Why the gateway is asked; decides what an answer other than "paid" means (`transition`)."""

    SUCCESS_RETURN = "success"
    FAIL_RETURN = "fail"
    CANCEL_RETURN = "cancel"
    CHECK = "check"  # reconciler, read-time re-check, admin verify
    EXPIRY = "expiry"  # reconciler, payment older than the expiry window


REJECTED = "rejected"  # `Payment.review_decision` of a payment a superuser refused: nothing lifts it


class Verdict(enum.StrEnum):
    PAID = "paid"  # a clear success matching our record
    RISKY = "risky"  # the same, but the card's issuer flagged it (risk level not "0")
    MISMATCH = "mismatch"  # the gateway claims success for something that is not our record
    FAILED = "failed"  # the gateway reports the attempt ended unpaid (failed, cancelled, expired)
    NOT_PAID = "not_paid"  # anything else: unknown to the gateway, pending, unreadable


@dataclass(frozen=True)
class Check:
    """One gateway answer held against one payment: the verdict, its evidence, and what settling did."""

    payment: Payment  # after settling: the state this call wrote, or the one a concurrent writer left
    verdict: Verdict
    mismatched: tuple[str, ...] = ()  # field names that did not match (or "status")
    details: dict[str, Any] = field(default_factory=dict)  # ours/theirs for amount, currency, status
    moved: bool = False

    @property
    def reason(self) -> str:
        """What did not match, for staff: `amount (ours 100.00, theirs 99.00); store_id`."""
        parts = []
        for name in self.mismatched:
            values = self.details.get(name)
            parts.append(f"{name} (ours {values['ours']}, theirs {values['theirs']})" if values else name)
        return "; ".join(parts)


def verify(payment: Payment, result: aamarpay.SearchResult | None) -> Check:
    """Compare the search API's answer with our record: the only proof of payment.

    Paid means a successful status AND our id, our store, our amount (Decimal compare) and our
    currency, as the merchant's figures (`amount_original`, `currency_merchant`: the gateway
    answers in taka whatever was charged). Values are reported for amount/currency/status only;
    store and id by name. A paid answer with a risk flag is `RISKY`.
    """
    if result is None:  # the gateway holds no such transaction
        return Check(payment, Verdict.NOT_PAID, ("status",), {"status": {"ours": payment.status, "theirs": None}})
    mismatched: list[str] = []
    details: dict[str, Any] = {}
    if result.mer_txnid != payment.transaction_id:
        mismatched.append("mer_txnid")
    if result.store_id != app_secrets().aamarpay_store_id:
        mismatched.append("store_id")
    if result.merchant_amount is None or result.merchant_amount != Decimal(payment.amount):
        mismatched.append("amount")
        theirs = None if result.merchant_amount is None else str(result.merchant_amount)
        details["amount"] = {"ours": payment.amount, "theirs": theirs}
    if result.merchant_currency != payment.currency:
        mismatched.append("currency")
        details["currency"] = {"ours": payment.currency, "theirs": result.merchant_currency}
    if result.is_successful:
        if mismatched:
            return Check(payment, Verdict.MISMATCH, tuple(mismatched), details)
        return Check(payment, Verdict.RISKY if result.is_risky else Verdict.PAID)
    details["status"] = {"ours": payment.status, "theirs": result.pay_status}
    ours = "mer_txnid" not in mismatched and "store_id" not in mismatched
    verdict = Verdict.FAILED if ours and result.ended_unpaid else Verdict.NOT_PAID
    return Check(payment, verdict, ("status", *mismatched), details)


def is_final(payment: Payment) -> bool:
    """Nothing the gateway says moves it: `success`, `review` (a superuser decides), or rejected."""
    return payment.status in (Status.SUCCESS, Status.REVIEW) or payment.review_decision == REJECTED


def transition(status: str, verdict: Verdict, occasion: Occasion, *, rejected: bool = False) -> Status | None:
    """The status a verdict moves a payment to on this occasion, or None (no change).

    | verdict  | success return | fail return | cancel return | check   | expiry  |
    | paid     | success        | success     | success       | success | success |
    | risky    | review         | review      | review        | review  | review  |
    | mismatch | -              | -           | -             | -       | expired |
    | failed   | -              | failed      | cancelled     | failed  | failed  |
    | not paid | -              | -           | cancelled     | -       | expired |
    Only `initiated` moves anywhere but `success`/`review`; nothing moves `success`, `review`, or a
    payment a superuser rejected (`rejected`).
    """
    if status in (Status.SUCCESS, Status.REVIEW) or rejected:
        return None
    if verdict in _GRANTS:
        return _GRANTS[verdict]
    return _ENDINGS.get((verdict, occasion)) if status == Status.INITIATED else None


_GRANTS = {Verdict.PAID: Status.SUCCESS, Verdict.RISKY: Status.REVIEW}
# How an `initiated` payment ends: a cancel return cancels whatever the gateway says (the
# customer left), and at expiry nothing stays open (a mismatch ends with its reason for staff).
_ENDINGS = {
    (Verdict.FAILED, Occasion.FAIL_RETURN): Status.FAILED,
    (Verdict.FAILED, Occasion.CANCEL_RETURN): Status.CANCELLED,
    (Verdict.FAILED, Occasion.CHECK): Status.FAILED,
    (Verdict.FAILED, Occasion.EXPIRY): Status.FAILED,
    (Verdict.NOT_PAID, Occasion.CANCEL_RETURN): Status.CANCELLED,
    (Verdict.NOT_PAID, Occasion.EXPIRY): Status.EXPIRED,
    (Verdict.MISMATCH, Occasion.EXPIRY): Status.EXPIRED,
}


def settle(
    payment: Payment,
    result: aamarpay.SearchResult | None,
    occasion: Occasion = Occasion.CHECK,
    *,
    actor_id: str | None = None,
) -> Check:
    """Apply the gateway's answer to our record (the table in `transition`)."""
    check = verify(payment, result)
    target = transition(payment.status, check.verdict, occasion, rejected=payment.review_decision == REJECTED)
    if target is None:
        return check
    reason = None
    if check.verdict is Verdict.MISMATCH:
        reason = f"the gateway reported a success that does not match: {check.reason}"
    elif target == Status.REVIEW and result is not None:
        reason = f"the card was flagged as risky by the gateway (risk level {result.risk_level})"
    current, moved = move(payment, target, via=occasion.value, result=result, actor_id=actor_id, reason=reason)
    if moved and check.verdict is Verdict.MISMATCH:
        metrics.count("PaymentsMismatched")
    return replace(check, payment=current, moved=moved)


def move(
    payment: Payment,
    to_status: Status,
    *,
    via: str,
    result: aamarpay.SearchResult | None = None,
    actor_id: str | None = None,
    reason: str | None = None,
    action: str | None = None,
    decision: str | None = None,
) -> tuple[Payment, bool]:
    """One transaction: the payment (only from the status we read), `has_paid`, the entry.

    `reason` becomes the payment's `failure_reason` (`review_reason` for a move to review);
    `action` overrides the entry's action and `decision` records a superuser's review decision.
    Returns the current payment and whether this call moved it. A failed condition means
    someone else moved it first: nothing is written and the current state is re-read.
    """
    old_status, now = payment.status, clock.now_iso()
    gateway_id = result.pg_txnid if result and result.pg_txnid else payment.gateway_transaction_id
    if to_status == Status.FAILED and reason is None and result is not None:
        reason = f"gateway reported {result.pay_status or 'no status'}"
    taka, rate = (result.taka_amount, result.rate) if result is not None and result.is_successful else (None, "")
    changes: dict[str, str | None] = {
        "status": to_status,
        "status_day": status_day(to_status, payment.created_at),
        "updated_at": now,
        "last_checked_at": now,
        "failure_reason": None if to_status in (Status.SUCCESS, Status.REVIEW) else reason,
        "review_reason": reason if to_status == Status.REVIEW else None,
        "gateway_transaction_id": gateway_id,
        "gateway_amount_bdt": f"{taka:.2f}" if taka is not None else payment.gateway_amount_bdt,
        "gateway_rate": rate or payment.gateway_rate,
        "review_decision": decision or payment.review_decision,
    }
    actions = [_set(name, value) for name, value in changes.items()]
    if to_status in (Status.SUCCESS, Status.EXPIRED, Status.REVIEW) or via in ("initiation", "review"):
        actions.append(Payment.check_queue.remove())  # nothing left to ask the gateway about
    user_actions: list[Action] = [User.has_paid.set(True)] if to_status == Status.SUCCESS else []
    if old_status == Status.INITIATED:
        user_actions.append(User.open_payments.add(-1))
    if Status.REVIEW in (old_status, to_status):
        user_actions.append(User.payments_in_review.add(1 if to_status == Status.REVIEW else -1))
    metadata = {
        "transaction_id": payment.transaction_id,
        "from": old_status,
        "via": via,
        "amount": payment.amount,
        "currency": payment.currency,
        "gateway_transaction_id": gateway_id,
    }
    if taka is not None and payment.currency != "BDT":
        metadata.update(amount_bdt=f"{taka:.2f}", rate=rate)
    if reason:
        metadata["reason"] = reason

    try:
        with transact_write() as transaction:
            transaction.update(
                payment, actions=actions, condition=(Payment.status != Status.SUCCESS) & (Payment.status == old_status)
            )
            if user_actions:
                transaction.update(User(payment.user_id), actions=user_actions, condition=User.id.exists())
            entry = activity.entry(action or ACTIONS[to_status], payment.user_id, actor_id=actor_id, metadata=metadata)
            transaction.save(entry)
            counters.add(transaction, _counts(old_status, to_status, payment), day=payment.day)
            if to_status == Status.SUCCESS:  # only the move that wins commits it: one receipt job
                receipt = receipt_key(payment.transaction_id)
                jobs.add(transaction, "receipt", job_id=receipt, transaction_id=payment.transaction_id)
    except TransactWriteError as error:
        if not (transaction_lost_condition(error) or conflicted(error)):
            raise
        # Someone else moved it first, or kept meeting this move: answer the state as it is now.
        logs.event(log, "payment already moved", transaction_id=payment.transaction_id, wanted=to_status)
        return Payment.get(payment.transaction_id, consistent_read=True), False
    for name, value in changes.items():
        setattr(payment, name, value)
    logs.event(log, "payment settled", transaction_id=payment.transaction_id, status=to_status, via=via)
    metrics.count("PaymentsSettled", status=str(to_status))
    return payment, True


def _set(name: str, value: str | None) -> Action:
    """The update action that leaves attribute `name` holding `value` (None: absent)."""
    attribute = getattr(Payment, name)
    return attribute.set(value) if value is not None else attribute.remove()


def receipt_key(transaction_id: str) -> str:
    """The receipt's dedupe key: one email per payment, whatever asks for it."""
    return f"receipt#{transaction_id}"


def _counts(old_status: str, to_status: str, payment: Payment) -> dict[str, counters.Amount]:
    """The counter deltas of a move, committed with it: per-status counts and revenue."""
    deltas = counters.moved("payments", old_status, to_status)
    if to_status == Status.SUCCESS:
        deltas[counters.revenue_key(payment.currency)] = Decimal(payment.amount)
    return deltas


@dataclass(frozen=True)
class Asked:
    """One search of the gateway: its record (None: it holds no such transaction), or the failure."""

    result: aamarpay.SearchResult | None = None
    failure: aamarpay.GatewayFailure | None = None

    @property
    def answered(self) -> bool:
        return self.failure is None


def search(payment: Payment, why: str) -> Asked:
    """Ask the gateway about `payment`; a failure is logged and returned, never raised."""
    try:
        return Asked(aamarpay.client().search(payment.transaction_id))
    except aamarpay.GatewayFailure as failure:
        logs.event(
            log,
            "gateway check failed",
            logging.WARNING,
            transaction_id=payment.transaction_id,
            why=why,
            timeout=isinstance(failure, aamarpay.GatewayTimeout),
            reason=failure.reason,
        )
        return Asked(failure=failure)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def holds_cancel_token(payment: Payment, token: str) -> bool:
    """Whether `token` is the one in the cancel URL we handed out for this payment (constant time)."""
    return hmac.compare_digest(payment.cancel_token_hash or "", token_hash(token))


def claim_search(
    transaction_id: str,
    *,
    window_seconds: int | None = None,
    owner_id: str | None = None,
    cancel_token: str | None = None,
    then: Sequence[Action] = (),
) -> tuple[Payment | None, bool]:
    """The payment a client-supplied id names, and whether this call won its gateway search slot.

    One conditional UpdateItem is both the read and the throttle: it stamps `searched_at` only
    when the payment is not final (`is_final`), was not searched inside the window, and (when given)
    belongs to `owner_id` and matches the cancel token; a refused condition still returns the
    item (ALL_OLD), so this costs what the consistent read it replaces cost. `then`: more
    actions for a won slot (the reconciler's next due time). Malformed ids never reach the table.
    """
    if not clock.is_id(transaction_id):
        return None, False
    now = clock.now()
    window = SEARCH_WINDOW_SECONDS if window_seconds is None else window_seconds
    condition = (
        Payment.transaction_id.exists()
        & (Payment.status != Status.SUCCESS)
        & (Payment.status != Status.REVIEW)
        & Payment.review_decision.does_not_exist()
        & (Payment.searched_at.does_not_exist() | (Payment.searched_at <= clock.iso(now - timedelta(seconds=window))))
    )
    if owner_id is not None:
        condition &= Payment.user_id == owner_id
    if cancel_token is not None:
        condition &= Payment.cancel_token_hash == token_hash(cancel_token)
    actions = [Payment.searched_at.set(clock.iso(now)), *then]
    return db.update_returning_item(Payment, transaction_id, actions=actions, condition=condition)
