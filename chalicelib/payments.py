"""Payments through aamarPay: our record first, the gateway's search API as the only authority.

- `initiate` writes the Payment (`initiated`), its idempotency claim and the activity entry in
  one transaction *before* the gateway is called, so no payment the customer can reach is
  unknown to us.
- The browser's return (success/fail/cancel) is only a hint naming a payment: identity comes
  from our table, the verdict from the search API (`verify`).
- `settle` is the one place a payment changes state; returns, the reconciler, read-time
  re-checks and the admin's verify all call it. Each move is one conditional TransactWrite
  (payment, user's `has_paid`, activity entry): a lost race changes nothing.
- `success` is final; a verified success lifts `failed`/`cancelled`/`expired` (money taken is
  never lost). Any other move starts from `initiated`.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import islice
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError

from chalicelib import activity, clock, errors, logs, pagination, ratelimit, stats
from chalicelib.config import Settings, app_secrets, settings
from chalicelib.db import transact_write, transaction_lost_condition
from chalicelib.gateway import aamarpay
from chalicelib.models import Claim, Payment, User, status_day
from chalicelib.validation import Fields

if TYPE_CHECKING:
    from chalicelib.accounts import Principal

INITIATED, SUCCESS, FAILED, CANCELLED, EXPIRED = "initiated", "success", "failed", "cancelled", "expired"
ACTIONS = {
    SUCCESS: "payment_success",
    FAILED: "payment_failed",
    CANCELLED: "payment_cancelled",
    EXPIRED: "payment_expired",
}
DESCRIPTION = "Paid uploads: one-time access fee"
IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,128}$")
# Optional customer details the client may send (name and email always come from the account).
CUSTOMER_FIELDS = {"cus_phone": 32, "cus_add1": 200, "cus_city": 100, "cus_country": 100}
PHONE = re.compile(r"^\+?[0-9 ()-]{3,32}$")
GATEWAY_UNPAID_STATES = frozenset({"failed", "cancelled", "canceled", "expired"})
TIMEOUT_PREFIX = "gateway timeout: "
RECHECK_WINDOW_SECONDS = 30
MAX_CHECKS_PER_RUN = 100
MAX_CONSECUTIVE_GATEWAY_FAILURES = 3
EXPIRY_SLACK_DAYS = 1  # the reconciler also looks one day further back, in case it was stopped

log = logs.get("payments")


class Occasion(enum.StrEnum):
    """Why the gateway is asked; decides what an answer other than "paid" means (`_target`)."""

    SUCCESS_RETURN = "success"
    FAIL_RETURN = "fail"
    CANCEL_RETURN = "cancel"
    CHECK = "check"  # reconciler, read-time re-check, admin verify
    EXPIRY = "expiry"  # reconciler, payment older than the expiry window


RETURNS = (Occasion.SUCCESS_RETURN, Occasion.FAIL_RETURN, Occasion.CANCEL_RETURN)


class Outcome(enum.Enum):
    PAID = "paid"  # a clear success matching our record
    MISMATCH = "mismatch"  # the gateway claims success for something that is not our record
    FAILED = "failed"  # the gateway reports the attempt ended unpaid (failed, cancelled, expired)
    NOT_PAID = "not_paid"  # anything else: unknown to the gateway, pending, unreadable


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    mismatched: tuple[str, ...] = ()  # field names that did not match (or "status")
    details: dict[str, Any] = field(default_factory=dict)  # ours/theirs for amount, currency, status


@dataclass(frozen=True)
class Settlement:
    payment: Payment  # the state after settling (re-read when a concurrent writer won)
    verdict: Verdict
    moved: bool


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


# --- views -----------------------------------------------------------------------------


def payment_view(payment: Payment) -> dict[str, Any]:
    return {
        "transaction_id": payment.transaction_id,
        "status": payment.status,
        "amount": payment.amount,
        "currency": payment.currency,
        "gateway_transaction_id": payment.gateway_transaction_id,
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
    }


def _initiation_view(payment: Payment) -> dict[str, Any]:
    return {
        "transaction_id": payment.transaction_id,
        "payment_url": payment.payment_url,
        "status": payment.status,
        "amount": payment.amount,
        "currency": payment.currency,
    }


# --- initiation ------------------------------------------------------------------------


def initiate(
    principal: Principal, body: dict[str, Any], *, idempotency_key: str | None, base_url: str
) -> dict[str, Any]:
    """Create the payment record, then ask aamarPay for the page the customer pays on.

    A gateway timeout keeps the payment `initiated` (aamarPay may have created it; the
    reconciler settles or expires it) and answers 504; a refusal marks it `failed` and
    answers 502. A retry with the same Idempotency-Key answers what the first request did.
    """
    claim_key = _claim_key(principal.user_id, idempotency_key)
    customer = _customer(principal.user, body)
    if principal.user.has_paid:
        if claim_key and (payment := _claimed_payment(claim_key)):
            return _replay(payment)
        raise errors.Conflict("You have already paid; uploads are open.", code="already_paid")
    payment = _new_payment(principal.user_id)
    try:
        with transact_write() as transaction:
            if claim_key:
                claim = Claim(claim_key, owner_id=payment.transaction_id, created_at=payment.created_at)
                transaction.save(claim, condition=Claim.key.does_not_exist())
            transaction.save(payment, condition=Payment.transaction_id.does_not_exist())
            transaction.save(
                activity.entry(
                    "payment_initiated",
                    payment.user_id,
                    metadata={
                        "transaction_id": payment.transaction_id,
                        "amount": payment.amount,
                        "currency": payment.currency,
                    },
                )
            )
            stats.add(transaction, stats.moved("payments", None, INITIATED), day=payment.day)
    except TransactWriteError as error:
        if claim_key and transaction_lost_condition(error):
            existing = _claimed_payment(claim_key)
            if existing is not None:
                return _replay(existing)
        raise
    return _open_at_gateway(payment, customer, base_url)


def _open_at_gateway(payment: Payment, customer: aamarpay.Customer, base_url: str) -> dict[str, Any]:
    try:
        payment_url = aamarpay.client().initiate(
            tran_id=payment.transaction_id,
            amount=Decimal(payment.amount),
            currency=payment.currency,
            desc=DESCRIPTION,
            customer=customer,
            success_url=f"{base_url}/api/payment/success/",
            fail_url=f"{base_url}/api/payment/fail/",
            cancel_url=f"{base_url}/api/payment/cancel/?{urlencode({'transaction_id': payment.transaction_id})}",
        )
    except aamarpay.GatewayTimeout as timeout:
        reason = TIMEOUT_PREFIX + logs.redact(timeout.reason)
        _update_quietly(payment, [Payment.failure_reason.set(reason)])
        logs.event(log, "gateway timeout at initiation", logging.WARNING, transaction_id=payment.transaction_id)
        raise _initiation_error(INITIATED, reason) from None
    except aamarpay.GatewayFailure as failure:
        reason = logs.redact(failure.reason)
        _move(payment, FAILED, via="initiation", failure_reason=reason)
        logs.event(log, "gateway refused initiation", logging.WARNING, transaction_id=payment.transaction_id)
        raise _initiation_error(FAILED, reason) from None
    payment.payment_url = payment_url
    _update_quietly(payment, [Payment.payment_url.set(payment_url)])
    logs.event(log, "payment initiated", transaction_id=payment.transaction_id, user_id=payment.user_id)
    return _initiation_view(payment)


def _initiation_error(status: str, reason: str) -> errors.ApiError:
    """The 502/504 of a failed initiation; built from the record so a replay answers the same."""
    if status == INITIATED:
        return errors.GatewayTimeout("The payment gateway did not answer in time; please try again.")
    return errors.GatewayError(f"The payment gateway refused the payment: {reason}")


def _replay(payment: Payment) -> dict[str, Any]:
    """The answer to a retried Idempotency-Key: what the first request answered.

    The payment it created (in its current state; `payment_url` is null if the gateway never
    gave one), or the same 502/504 while that failure is still the payment's last word.
    """
    if payment.payment_url or payment.status not in (INITIATED, FAILED):
        return _initiation_view(payment)
    if payment.failure_reason:
        raise _initiation_error(payment.status, payment.failure_reason)
    raise errors.Conflict(
        "A request with this Idempotency-Key is still in progress; retry in a moment.", code="idempotency_key_in_use"
    )


def _claim_key(user_id: str, idempotency_key: str | None) -> str | None:
    if idempotency_key is None:
        return None
    if not IDEMPOTENCY_KEY.match(idempotency_key):
        raise errors.ValidationError(
            "Some fields are invalid.", details={"Idempotency-Key": "1 to 128 printable ASCII characters."}
        )
    return f"idem#{user_id}#{idempotency_key}"


def _claimed_payment(claim_key: str) -> Payment | None:
    try:
        owner_id = Claim.get(claim_key, consistent_read=True).owner_id
        return Payment.get(owner_id, consistent_read=True)
    except DoesNotExist:
        return None


def _customer(user: User, body: dict[str, Any]) -> aamarpay.Customer:
    """Name and email from the account (never from the request); the rest optional."""
    fields = Fields(body)
    extra = {name: fields.string(name, required=False, max_length=size) for name, size in CUSTOMER_FIELDS.items()}
    phone = extra["cus_phone"]
    if phone is not None and not PHONE.match(phone):
        fields.fail("cus_phone", "Digits, spaces, +, - and parentheses only.")
    fields.done()
    given = {name.removeprefix("cus_"): value.strip() for name, value in extra.items() if value and value.strip()}
    return aamarpay.Customer(name=user.username, email=user.email, **given)


def _new_payment(user_id: str) -> Payment:
    config = settings()
    created_at = clock.now_iso()
    return Payment(
        clock.new_id(),
        user_id=user_id,
        status=INITIATED,
        amount=str(config.payment_amount),
        currency=config.payment_currency,
        created_at=created_at,
        updated_at=created_at,
        day=clock.day_of(created_at),
        status_day=status_day(INITIATED, created_at),
    )


def _update_quietly(payment: Payment, actions: list[Any]) -> None:
    """Note something on a still-initiated payment; skipped if it already moved on."""
    try:
        payment.update(
            actions=[*actions, Payment.updated_at.set(clock.now_iso())], condition=Payment.status == INITIATED
        )
    except PynamoDBException as error:
        logs.event(
            log, "payment note skipped", logging.WARNING, transaction_id=payment.transaction_id, error=str(error)
        )


# --- the verdict and the one settle function ------------------------------------------


def verify(payment: Payment, result: aamarpay.SearchResult | None) -> Verdict:
    """Compare the search API's answer with our record: the only proof of payment.

    Paid means a successful status AND our id, our store, our amount (Decimal compare) and
    our currency. Values are reported for amount/currency/status only; store and id by name.
    """
    if result is None:
        return Verdict(Outcome.NOT_PAID, ("status",), {"status": {"ours": payment.status, "theirs": None}})
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
        outcome = Outcome.MISMATCH if mismatched else Outcome.PAID
        return Verdict(outcome, tuple(mismatched), details)
    details["status"] = {"ours": payment.status, "theirs": result.pay_status}
    ours = "mer_txnid" not in mismatched and "store_id" not in mismatched
    outcome = Outcome.FAILED if ours and _ended_unpaid(result) else Outcome.NOT_PAID
    return Verdict(outcome, ("status", *mismatched), details)


def _ended_unpaid(result: aamarpay.SearchResult) -> bool:
    """The gateway reports a finished attempt without payment ("Failed"/"Cancelled"/"Expired", code 7).

    Anything else that is not a success ("Pending", unknown spellings) may still turn into a
    payment, so it stays "not paid (yet)".
    """
    return result.pay_status.casefold() in GATEWAY_UNPAID_STATES or result.status_code == "7"


def _target(status: str, outcome: Outcome, occasion: Occasion) -> str | None:
    """The status a verdict moves a payment to on this occasion, or None (no change)."""
    if status == SUCCESS:
        return None
    if outcome is Outcome.PAID:
        return SUCCESS
    if status != INITIATED or outcome is Outcome.MISMATCH or occasion is Occasion.SUCCESS_RETURN:
        return None
    if occasion is Occasion.CANCEL_RETURN:
        return CANCELLED  # the customer left; the gateway saying "failed" does not change that
    if outcome is Outcome.FAILED:
        return FAILED
    return EXPIRED if occasion is Occasion.EXPIRY else None


def settle(
    payment: Payment,
    result: aamarpay.SearchResult | None,
    occasion: Occasion = Occasion.CHECK,
    *,
    actor_id: str | None = None,
) -> Settlement:
    """Apply the gateway's answer to our record: where every payment is settled.

    | verdict  | success return | fail return | cancel return | check   | expiry  |
    | paid     | success        | success     | success       | success | success |
    | failed   | -              | failed      | cancelled     | failed  | failed  |
    | not paid | -              | -           | cancelled     | -       | expired |
    A mismatch changes nothing; only `initiated` moves anywhere but `success`.
    """
    verdict = verify(payment, result)
    target = _target(payment.status, verdict.outcome, occasion)
    if target is None:
        return Settlement(payment, verdict, moved=False)
    current, moved = _move(payment, target, via=occasion.value, result=result, actor_id=actor_id)
    return Settlement(current, verdict, moved)


def _move(
    payment: Payment,
    to_status: str,
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
    if to_status == FAILED and failure_reason is None and result is not None:
        failure_reason = f"gateway reported {result.pay_status or 'no status'}"
    actions = [
        Payment.status.set(to_status),
        Payment.status_day.set(status_day(to_status, payment.created_at)),
        Payment.updated_at.set(now),
        Payment.last_checked_at.set(now),
        Payment.failure_reason.set(failure_reason) if failure_reason else Payment.failure_reason.remove(),
    ]
    if gateway_id:
        actions.append(Payment.gateway_transaction_id.set(gateway_id))
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
                payment, actions=actions, condition=(Payment.status != SUCCESS) & (Payment.status == old_status)
            )
            if to_status == SUCCESS:
                transaction.update(User(payment.user_id), actions=[User.has_paid.set(True)], condition=User.id.exists())
            transaction.save(activity.entry(ACTIONS[to_status], payment.user_id, actor_id=actor_id, metadata=metadata))
            stats.add(transaction, _counts(old_status, to_status, payment), day=payment.day)
    except TransactWriteError as error:
        if not transaction_lost_condition(error):
            raise
        logs.event(log, "payment already moved", transaction_id=payment.transaction_id, wanted=to_status)
        return Payment.get(payment.transaction_id, consistent_read=True), False
    payment.status, payment.status_day, payment.updated_at = to_status, status_day(to_status, payment.created_at), now
    payment.last_checked_at, payment.gateway_transaction_id, payment.failure_reason = now, gateway_id, failure_reason
    logs.event(log, "payment settled", transaction_id=payment.transaction_id, status=to_status, via=via)
    return payment, True


def _counts(old_status: str, to_status: str, payment: Payment) -> dict[str, stats.Amount]:
    """The counter deltas of a move, committed with it: per-status counts and revenue."""
    deltas = stats.moved("payments", old_status, to_status)
    if to_status == SUCCESS:
        deltas[stats.revenue_key(payment.currency)] = Decimal(payment.amount)
    return deltas


def _search(payment: Payment, why: str) -> tuple[bool, aamarpay.SearchResult | None]:
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


# --- gateway returns -------------------------------------------------------------------


def handle_return(kind: str, form: dict[str, str]) -> ReturnOutcome:
    """A browser return from aamarPay: the form only names a payment; the search API decides.

    When the gateway cannot be asked, nothing changes and the answer is the current state
    (normally `initiated`); the reconciler checks again within minutes.
    """
    occasion = Occasion(kind)
    if occasion not in RETURNS:
        raise ValueError(f"not a gateway return: {kind!r}")
    claimed = form.get("transaction_id" if occasion is Occasion.CANCEL_RETURN else "mer_txnid") or ""
    payment = _find(claimed)
    if payment is None:
        _reject(None, claimed, occasion, "unknown_transaction")
        return ReturnOutcome(False, claimed if clock.is_id(claimed) else None, None, "Unknown transaction.")
    if payment.status == SUCCESS:  # final: nothing the gateway could say changes it
        return _answer(payment, "The payment succeeded.")
    answered, result = _search(payment, f"{occasion.value}_return")
    if not answered:
        return _answer(payment, "The gateway could not confirm the payment yet; it will be checked again shortly.")
    settlement = settle(payment, result, occasion)
    verdict = settlement.verdict
    if verdict.outcome is Outcome.MISMATCH or (
        occasion is Occasion.SUCCESS_RETURN and settlement.payment.status != SUCCESS
    ):
        _reject(payment.user_id, payment.transaction_id, occasion, verdict.outcome.value, verdict)
        return ReturnOutcome(
            False, payment.transaction_id, settlement.payment.status, "The gateway did not confirm this payment."
        )
    return _answer(settlement.payment, f"The payment is {settlement.payment.status}.")


def _answer(payment: Payment, message: str) -> ReturnOutcome:
    return ReturnOutcome(True, payment.transaction_id, payment.status, message)


def _reject(
    user_id: str | None, transaction_id: str, occasion: Occasion, reason: str, verdict: Verdict | None = None
) -> None:
    """A security event: a return we could not verify (never the form itself, never secrets)."""
    metadata: dict[str, Any] = {"kind": occasion.value, "reason": reason, "transaction_id": transaction_id[:64]}
    if verdict is not None:
        metadata["mismatched"] = list(verdict.mismatched)
        metadata.update(verdict.details)
    activity.record("payment_callback_rejected", user_id, metadata=metadata)
    logs.event(log, "payment return rejected", logging.WARNING, **metadata)


def _find(transaction_id: str) -> Payment | None:
    if not clock.is_id(transaction_id):
        return None
    try:
        return Payment.get(transaction_id, consistent_read=True)
    except DoesNotExist:
        return None


# --- reads -----------------------------------------------------------------------------


def list_for_user(user_id: str, limit: int, cursor: str | None) -> pagination.Page:
    query = pagination.newest_first(Payment.by_user.query, user_id)
    return pagination.query_page(f"payments:user:{user_id}", cursor, limit, query)


def get_for_user(user_id: str, transaction_id: str) -> dict[str, Any]:
    """The caller's payment; one not yet `success` is re-checked with the gateway at most every 30 s.

    Not only `initiated`: a customer may cancel, go back to the hosted page, pay and close the
    tab; the reconciler only follows `initiated` payments, so this read is where that is found.
    """
    payment = _find(transaction_id)
    if payment is None or payment.user_id != user_id:
        raise errors.NotFound("No such transaction.")
    if payment.status != SUCCESS and ratelimit.start_window(
        f"recheck#{payment.transaction_id}", RECHECK_WINDOW_SECONDS
    ):
        answered, result = _search(payment, "read")
        if answered:
            payment = settle(payment, result).payment
    return payment_view(payment)


def verify_now(transaction_id: str, *, actor_id: str) -> dict[str, Any]:
    """The superuser's "check with the gateway now": 502/504 when the gateway cannot answer."""
    payment = _find(transaction_id)
    if payment is None:
        raise errors.NotFound("No such transaction.")
    try:
        result = aamarpay.client().search(payment.transaction_id)
    except aamarpay.GatewayTimeout:
        raise errors.GatewayTimeout("The payment gateway did not answer in time; please try again.") from None
    except aamarpay.GatewayFailure as failure:
        raise errors.GatewayError(f"The payment gateway could not be asked: {logs.redact(failure.reason)}") from None
    return payment_view(settle(payment, result, actor_id=actor_id).payment)


# --- the scheduled reconciler ----------------------------------------------------------


def reconcile_pending(*, max_checks: int = MAX_CHECKS_PER_RUN) -> dict[str, int]:
    """Ask the gateway about payments still `initiated` after a while; expire abandoned ones.

    The customer may close the browser before the return: nothing the gateway settled is
    lost. Bounded per run (`max_checks`, and a stop after repeated gateway failures).
    """
    config = settings()
    now = clock.now()
    expire_before = clock.iso(now - timedelta(seconds=config.payment_expire_after_seconds))
    summary = dict.fromkeys(("checked", "success", "failed", "expired", "unchanged", "mismatches", "gateway_errors"), 0)
    failures_in_a_row = 0
    for payment in islice(_pending(now, config), max_checks):
        answered, result = _search(payment, "reconcile")
        if not answered:
            summary["gateway_errors"] += 1
            failures_in_a_row += 1
            if failures_in_a_row >= MAX_CONSECUTIVE_GATEWAY_FAILURES:
                break
            continue
        failures_in_a_row = 0
        occasion = Occasion.EXPIRY if payment.created_at < expire_before else Occasion.CHECK
        settlement = settle(payment, result, occasion)
        summary["checked"] += 1
        summary[settlement.payment.status if settlement.moved else "unchanged"] += 1
        if settlement.verdict.outcome is Outcome.MISMATCH:
            summary["mismatches"] += 1
            logs.event(log, "gateway answer does not match", logging.WARNING, transaction_id=payment.transaction_id)
    logs.event(log, "payments reconciled", **summary)
    return summary


def _pending(now: datetime, config: Settings) -> Iterator[Payment]:
    """Initiated payments old enough to re-check, newest day first (index queries, no Scan)."""
    checked_before = clock.iso(now - timedelta(seconds=config.payment_recheck_after_seconds))
    expiry_day = (now - timedelta(seconds=config.payment_expire_after_seconds)).date()
    oldest = expiry_day - timedelta(days=EXPIRY_SLACK_DAYS)
    for day in pagination.days_back(now.date(), oldest):
        yield from Payment.by_status_day.query(
            status_day(INITIATED, day.isoformat()),
            Payment.created_at <= checked_before,
            scan_index_forward=False,
            page_size=MAX_CHECKS_PER_RUN,
        )
