"""Starting a payment: our record (and its idempotency claim) first, then the gateway's hosted page.

The Payment (`initiated`), its Idempotency-Key claim and the activity entry are written in one
transaction *before* the gateway is called, so no payment the customer can reach is unknown to us.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from pynamodb.exceptions import DoesNotExist, PynamoDBException, TransactWriteError

from chalicelib.core import activity, clock, counters, errors, logs, metrics
from chalicelib.core.config import settings
from chalicelib.core.db import CONDITION_FAILED, cancellation_codes, conflicted, transact_write
from chalicelib.core.models import Claim, Payment, User, status_day
from chalicelib.core.validation import Fields
from chalicelib.payments import aamarpay
from chalicelib.payments.reads import payment_view
from chalicelib.payments.settlement import CHECK_QUEUE, Status, move, token_hash

if TYPE_CHECKING:
    from chalicelib.accounts.accounts import Principal

DESCRIPTION = "Paid uploads: one-time access fee"
IDEMPOTENCY_KEY = re.compile(r"^[\x20-\x7e]{1,128}$")
# Optional customer details the client may send (name and email always come from the account).
CUSTOMER_FIELDS = {"cus_phone": 32, "cus_add1": 200, "cus_city": 100, "cus_country": 100}
PHONE = re.compile(r"^\+?[0-9 ()-]{3,32}$")
TIMEOUT_PREFIX = "gateway timeout: "
MAX_OPEN_PAYMENTS = 5  # per user, `initiated` at once
# The contract's answer to initiate-payment (and to its replays), in its order on the wire.
INITIATION_FIELDS = ("transaction_id", "payment_url", "status", "amount", "currency")


class IdempotencyKeyReused(errors.ApiError):
    status, code = 422, "idempotency_key_reused"


class TooManyPayments(errors.ApiError):
    status, code = 429, "too_many_payments"


log = logs.get("payments")


def initiate(
    principal: Principal, body: dict[str, Any], *, idempotency_key: str | None, base_url: str
) -> dict[str, Any]:
    """Create the payment record, then ask aamarPay for the page the customer pays on.

    A gateway timeout keeps the payment `initiated` (aamarPay may have created it; the
    reconciler settles or expires it) and answers 504; a refusal marks it `failed` and
    answers 502. A retry with the same Idempotency-Key answers what the first request did
    (422 if it comes with another body). A sixth open payment answers 429.
    """
    claim_key = _claim_key(principal.user_id, idempotency_key)
    body_hash = _body_hash(body)
    customer = _customer(principal.user, body)
    if principal.user.has_paid:
        if claim_key and (payment := _claimed_payment(claim_key, body_hash)):
            return _replay(payment)
        raise errors.Conflict("You have already paid; uploads are open.", code="already_paid")
    if principal.user.payments_in_review:  # paid, held for a person: paying again would charge twice
        raise errors.Conflict(
            "Your payment is under review; uploads open once it is approved.", code="payment_in_review"
        )
    payment, cancel_token = _new_payment(principal.user_id)
    claim = Claim(claim_key, owner_id=payment.transaction_id, created_at=payment.created_at, body_hash=body_hash)
    entry = activity.entry(
        "payment_initiated",
        payment.user_id,
        metadata={"transaction_id": payment.transaction_id, "amount": payment.amount, "currency": payment.currency},
    )

    try:
        with transact_write() as transaction:
            if claim_key:
                transaction.save(claim, condition=Claim.key.does_not_exist())
            transaction.save(payment, condition=Payment.transaction_id.does_not_exist())
            transaction.save(entry)
            counters.add(transaction, counters.moved("payments", None, Status.INITIATED), day=payment.day)
            # The user's update goes last (its cancellation code is read below). The open-payments
            # count rises in the same transaction, so racing requests cannot pass it.
            below_limit = User.open_payments.does_not_exist() | (User.open_payments < MAX_OPEN_PAYMENTS)
            below_limit &= User.deleting.does_not_exist()  # an account being deleted takes no new payment
            transaction.update(
                User(payment.user_id), actions=[User.open_payments.add(1)], condition=User.id.exists() & below_limit
            )
    except TransactWriteError as error:
        # pynamodb sends puts (claim first) before updates (the user last).
        codes = cancellation_codes(error)
        if claim_key and codes[:1] == [CONDITION_FAILED]:
            existing = _claimed_payment(claim_key, body_hash)
            if existing is not None:
                return _replay(existing)
        if codes[-1:] == [CONDITION_FAILED]:
            raise TooManyPayments(
                f"You have {MAX_OPEN_PAYMENTS} payments open; finish or cancel one, or wait until they expire."
            ) from None
        if conflicted(error):
            raise errors.Conflict("Another request met this one; please try again.", code="conflict") from None
        raise
    return _open_at_gateway(payment, cancel_token, customer, base_url)


def _open_at_gateway(payment: Payment, cancel_token: str, customer: aamarpay.Customer, base_url: str) -> dict[str, Any]:
    try:
        payment_url = aamarpay.client().initiate(
            tran_id=payment.transaction_id,
            amount=Decimal(payment.amount),
            currency=payment.currency,
            desc=DESCRIPTION,
            customer=customer,
            success_url=f"{base_url}/api/payment/success/",
            fail_url=f"{base_url}/api/payment/fail/",
            cancel_url=f"{base_url}/api/payment/cancel/?{cancel_query(payment.transaction_id, cancel_token)}",
        )
    except aamarpay.GatewayTimeout as timeout:
        reason = TIMEOUT_PREFIX + logs.redact(timeout.reason)
        _update_quietly(payment, [Payment.failure_reason.set(reason)])
        logs.event(log, "gateway timeout at initiation", logging.WARNING, transaction_id=payment.transaction_id)
        raise _initiation_error(Status.INITIATED, reason) from None
    except aamarpay.GatewayFailure as failure:
        reason = logs.redact(failure.reason)
        move(payment, Status.FAILED, via="initiation", reason=reason)
        logs.event(log, "gateway refused initiation", logging.WARNING, transaction_id=payment.transaction_id)
        raise _initiation_error(Status.FAILED, reason) from None
    payment.payment_url = payment_url
    _update_quietly(payment, [Payment.payment_url.set(payment_url)])
    logs.event(log, "payment initiated", transaction_id=payment.transaction_id, user_id=payment.user_id)
    metrics.count("PaymentsInitiated")
    return payment_view(payment, INITIATION_FIELDS)


def cancel_query(transaction_id: str, token: str) -> str:
    """The cancel URL's query: the id names the payment, the token proves the customer was handed it."""
    return urlencode({"transaction_id": transaction_id, "token": token})


def _initiation_error(status: str, reason: str) -> errors.ApiError:
    """The 502/504 of a failed initiation; built from the record so a replay answers the same."""
    if status == Status.INITIATED:
        return errors.GatewayTimeout("The payment gateway did not answer in time; please try again.")
    return errors.GatewayError(f"The payment gateway refused the payment: {reason}")


def _replay(payment: Payment) -> dict[str, Any]:
    """The answer to a retried Idempotency-Key: what the first request answered.

    The payment it created (in its current state; `payment_url` is null if the gateway never
    gave one), or the same 502/504 while that failure is still the payment's last word.
    """
    if payment.payment_url or payment.status not in (Status.INITIATED, Status.FAILED):
        return payment_view(payment, INITIATION_FIELDS)
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


def _claimed_payment(claim_key: str, body_hash: str) -> Payment | None:
    """The payment a used Idempotency-Key created; 422 when the key now comes with another body."""
    try:
        claim = Claim.get(claim_key, consistent_read=True)
        if claim.body_hash is not None and claim.body_hash != body_hash:
            raise IdempotencyKeyReused("This Idempotency-Key was used with a different request body.")
        return Payment.get(claim.owner_id, consistent_read=True)
    except DoesNotExist:
        return None


def _body_hash(body: dict[str, Any]) -> str:
    """The request as parsed, in one canonical spelling (key order and spacing do not matter)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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


def _new_payment(user_id: str) -> tuple[Payment, str]:
    """The unsaved record (queued for the reconciler's first check) and its cancel token."""
    config = settings()
    now = clock.now()
    created_at = clock.iso(now)
    cancel_token = secrets.token_urlsafe(32)
    first_check = clock.iso(now + timedelta(seconds=config.payment_recheck_after_seconds))
    payment = Payment(
        clock.new_id(),
        user_id=user_id,
        status=Status.INITIATED,
        amount=str(config.payment_amount),
        currency=config.payment_currency,
        created_at=created_at,
        updated_at=created_at,
        day=clock.day_of(created_at),
        status_day=status_day(Status.INITIATED, created_at),
        cancel_token_hash=token_hash(cancel_token),
        check_queue=CHECK_QUEUE,
        next_check_at=first_check,
        checks=0,
    )
    return payment, cancel_token


def _update_quietly(payment: Payment, actions: list[Any]) -> None:
    """Note something on a still-initiated payment; skipped if it already moved on."""
    try:
        payment.update(
            actions=[*actions, Payment.updated_at.set(clock.now_iso())], condition=Payment.status == Status.INITIATED
        )
    except PynamoDBException as error:
        logs.event(
            log, "payment note skipped", logging.WARNING, transaction_id=payment.transaction_id, error=str(error)
        )
