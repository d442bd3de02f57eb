"""Where every payment is settled: the verdict on the gateway's answer, the transition rule, `settle`.

Returns, the reconciler, read-time re-checks, the admin's verify and a refused initiation all
end here. Each move is one conditional TransactWrite (payment, user's `has_paid`, activity
entry): a lost race changes nothing. `success` is final; a verified success lifts
`failed`/`cancelled`/`expired` (money taken is never lost). Any other move starts from `initiated`.
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

GATEWAY_UNPAID_STATES = frozenset({"failed", "cancelled", "canceled", "expired"})
SEARCH_WINDOW_SECONDS = 10  # however many returns arrive, the gateway hears about a payment this rarely
CHECK_QUEUE = "due"  # the reconciler index's one partition: payments that still need re-checks

log = logs.get("payments")


class Status(enum.StrEnum):
    INITIATED = "initiated"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


ACTIONS = {
    Status.SUCCESS: "payment_success",
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


class Verdict(enum.StrEnum):
    PAID = "paid"  # a clear success matching our record
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


def verify(payment: Payment, result: aamarpay.SearchResult | None) -> Check:
    """Compare the search API's answer with our record: the only proof of payment.

    Paid means a successful status AND our id, our store, our amount (Decimal compare) and
    our currency. Values are reported for amount/currency/status only; store and id by name.
    """
    if result is None:
        return Check(payment, Verdict.NOT_PAID, ("status",), {"status": {"ours": payment.status, "theirs": None}})
    mismatched: list[str] = []
    details: dict[str, Any] = {}
    if result.mer_txnid != payment.transaction_id:
        mismatched.append("mer_txnid")
    if result.store_id != app_secrets().aamarpay_store_id:
        mismatched.append("store_id")
    if result.amount is None or result.amount != Decimal(payment.amount):
        mismatched.append("amount")
        details["amount"] = {"ours": payment.amount, "theirs": None if result.amount is None else str(result.amount)}
    if result.currency != payment.currency:
        mismatched.append("currency")
        details["currency"] = {"ours": payment.currency, "theirs": result.currency}
    if result.is_successful:
        return Check(payment, Verdict.MISMATCH if mismatched else Verdict.PAID, tuple(mismatched), details)
    details["status"] = {"ours": payment.status, "theirs": result.pay_status}
    ours = "mer_txnid" not in mismatched and "store_id" not in mismatched
    verdict = Verdict.FAILED if ours and _ended_unpaid(result) else Verdict.NOT_PAID
    return Check(payment, verdict, ("status", *mismatched), details)


def _ended_unpaid(result: aamarpay.SearchResult) -> bool:
    """The gateway reports a finished attempt without payment ("Failed"/"Cancelled"/"Expired", code 7).

    Anything else that is not a success ("Pending", unknown spellings) may still turn into a
    payment, so it stays "not paid (yet)".
    """
    return result.pay_status.casefold() in GATEWAY_UNPAID_STATES or result.status_code == "7"


def transition(status: str, verdict: Verdict, occasion: Occasion) -> Status | None:
    """The status a verdict moves a payment to on this occasion, or None (no change).

    | verdict  | success return | fail return | cancel return | check   | expiry  |
    | paid     | success        | success     | success       | success | success |
    | failed   | -              | failed      | cancelled     | failed  | failed  |
    | not paid | -              | -           | cancelled     | -       | expired |
    A mismatch changes nothing; only `initiated` moves anywhere but `success`.
    """
    if status == Status.SUCCESS:
        return None
    if verdict is Verdict.PAID:
        return Status.SUCCESS
    if status != Status.INITIATED or verdict is Verdict.MISMATCH or occasion is Occasion.SUCCESS_RETURN:
        return None
    if occasion is Occasion.CANCEL_RETURN:
        return Status.CANCELLED  # the customer left; the gateway saying "failed" does not change that
    if verdict is Verdict.FAILED:
        return Status.FAILED
    return Status.EXPIRED if occasion is Occasion.EXPIRY else None


def settle(
    payment: Payment,
    result: aamarpay.SearchResult | None,
    occasion: Occasion = Occasion.CHECK,
    *,
    actor_id: str | None = None,
) -> Check:
    """Apply the gateway's answer to our record (the table in `transition`)."""
    check = verify(payment, result)
    target = transition(payment.status, check.verdict, occasion)
    if target is None:
        return check
    current, moved = move(payment, target, via=occasion.value, result=result, actor_id=actor_id)
    return replace(check, payment=current, moved=moved)


def move(
    payment: Payment,
    to_status: Status,
    *,
    via: str,
    result: aamarpay.SearchResult | None = None,
    actor_id: str | None = None,
    failure_reason: str | None = None,
) -> tuple[Payment, bool]:
    """One transaction: the payment (only from the status we read), `has_paid`, the entry.

    Returns the current payment and whether this call moved it. A failed condition means
    someone else moved it first: nothing is written and the current state is re-read.
    """
    old_status, now = payment.status, clock.now_iso()
    gateway_id = result.pg_txnid if result and result.pg_txnid else payment.gateway_transaction_id
    if to_status == Status.FAILED and failure_reason is None and result is not None:
        failure_reason = f"gateway reported {result.pay_status or 'no status'}"
    actions: list[Action] = [
        Payment.status.set(to_status),
        Payment.status_day.set(status_day(to_status, payment.created_at)),
        Payment.updated_at.set(now),
        Payment.last_checked_at.set(now),
        Payment.failure_reason.set(failure_reason) if failure_reason else Payment.failure_reason.remove(),
    ]
    if gateway_id:
        actions.append(Payment.gateway_transaction_id.set(gateway_id))
    if to_status in (Status.SUCCESS, Status.EXPIRED) or via == "initiation":
        actions.append(Payment.check_queue.remove())  # nothing left to ask the gateway about
    user_actions: list[Action] = [User.has_paid.set(True)] if to_status == Status.SUCCESS else []
    if old_status == Status.INITIATED:
        user_actions.append(User.open_payments.add(-1))
    metadata = {
        "transaction_id": payment.transaction_id,
        "from": old_status,
        "via": via,
        "amount": payment.amount,
        "currency": payment.currency,
        "gateway_transaction_id": gateway_id,
    }
    if failure_reason:
        metadata["reason"] = failure_reason

    try:
        with transact_write() as transaction:
            transaction.update(
                payment, actions=actions, condition=(Payment.status != Status.SUCCESS) & (Payment.status == old_status)
            )
            if user_actions:
                transaction.update(User(payment.user_id), actions=user_actions, condition=User.id.exists())
            transaction.save(activity.entry(ACTIONS[to_status], payment.user_id, actor_id=actor_id, metadata=metadata))
            counters.add(transaction, _counts(old_status, to_status, payment), day=payment.day)
    except TransactWriteError as error:
        if not (transaction_lost_condition(error) or conflicted(error)):
            raise
        # Someone else moved it first, or kept meeting this move: answer the state as it is now.
        logs.event(log, "payment already moved", transaction_id=payment.transaction_id, wanted=to_status)
        return Payment.get(payment.transaction_id, consistent_read=True), False
    payment.status, payment.status_day, payment.updated_at = to_status, status_day(to_status, payment.created_at), now
    payment.last_checked_at, payment.gateway_transaction_id, payment.failure_reason = now, gateway_id, failure_reason
    if to_status == Status.SUCCESS:  # only the winner of the move gets here: one receipt job
        jobs.enqueue_after_commit(
            "receipt", job_id=receipt_key(payment.transaction_id), transaction_id=payment.transaction_id
        )
    logs.event(log, "payment settled", transaction_id=payment.transaction_id, status=to_status, via=via)
    metrics.count("PaymentsSettled", status=str(to_status))
    return payment, True


def receipt_key(transaction_id: str) -> str:
    """The receipt's dedupe key: one email per payment, whatever asks for it."""
    return f"receipt#{transaction_id}"


def _counts(old_status: str, to_status: str, payment: Payment) -> dict[str, counters.Amount]:
    """The counter deltas of a move, committed with it: per-status counts and revenue."""
    deltas = counters.moved("payments", old_status, to_status)
    if to_status == Status.SUCCESS:
        deltas[counters.revenue_key(payment.currency)] = Decimal(payment.amount)
    return deltas


def search(payment: Payment, why: str) -> tuple[bool, aamarpay.SearchResult | None]:
    """(answered, result): a gateway failure is logged and reported as not answered."""
    try:
        return True, aamarpay.client().search(payment.transaction_id)
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
        return False, None


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
    when the payment is not `success`, was not searched inside the window, and (when given)
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
        & (Payment.searched_at.does_not_exist() | (Payment.searched_at <= clock.iso(now - timedelta(seconds=window))))
    )
    if owner_id is not None:
        condition &= Payment.user_id == owner_id
    if cancel_token is not None:
        condition &= Payment.cancel_token_hash == token_hash(cancel_token)
    actions = [Payment.searched_at.set(clock.iso(now)), *then]
    return db.update_returning_item(Payment, transaction_id, actions=actions, condition=condition)
