"""Reading payments: the owner's list and record (re-checked with the gateway on read), the admin's verify."""

from __future__ import annotations

from typing import Any

from chalicelib.core import errors, logs, pagination
from chalicelib.core.models import Payment
from chalicelib.payments import aamarpay
from chalicelib.payments.settlement import Status, claim_search, search, settle

RECHECK_WINDOW_SECONDS = 30


# The contract's Payment, in the order of its fields on the wire.
PAYMENT_FIELDS = (
    "transaction_id",
    "status",
    "amount",
    "currency",
    "gateway_transaction_id",
    "created_at",
    "updated_at",
)


def payment_view(payment: Payment, fields: tuple[str, ...] = PAYMENT_FIELDS) -> dict[str, Any]:
    """A payment as the API answers it: the contract's Payment (plus `review_reason` while in
    review), or the attributes `fields` names in their order (initiation's answer)."""
    view = {field: getattr(payment, field) for field in fields}
    if fields is PAYMENT_FIELDS and payment.status == Status.REVIEW:
        view["review_reason"] = payment.review_reason
    return view


def list_for_user(user_id: str, limit: int, cursor: str | None) -> pagination.Page:
    query = pagination.newest_first(Payment.by_user.query, user_id)
    return pagination.query_page(f"payments:user:{user_id}", cursor, limit, query)


def get_for_user(user_id: str, transaction_id: str) -> dict[str, Any]:
    """The caller's payment; one not yet `success` is re-checked with the gateway at most every 30 s.

    Not only `initiated`: a customer may cancel, go back to the hosted page, pay and close the
    tab; this read finds that at once (the reconciler within minutes). Only the owner's read
    claims the search slot, so other callers cannot spend it.
    """
    payment, slot = claim_search(transaction_id, window_seconds=RECHECK_WINDOW_SECONDS, owner_id=user_id)
    if payment is None or payment.user_id != user_id:
        raise errors.NotFound("No such transaction.")
    if slot:
        asked = search(payment, "read")
        if asked.answered:
            payment = settle(payment, asked.result).payment
    return payment_view(payment)


def verify_now(transaction_id: str, *, actor_id: str) -> dict[str, Any]:
    """The superuser's "check with the gateway now": 502/504 when the gateway cannot answer.

    Inside the payment's 10 s search window (or once final: `is_final`) the stored state is the
    answer, with `gateway: null` (not asked). Otherwise `gateway` says what it holds: `record`
    false when it has no such transaction (`Invalid-Data`), else its `pay_status`/`status_code`.
    """
    payment, slot = claim_search(transaction_id)
    if payment is None:
        raise errors.NotFound("No such transaction.")
    if not slot:
        return {**payment_view(payment), "gateway": None}
    try:
        result = aamarpay.client().search(payment.transaction_id)
    except aamarpay.GatewayTimeout:
        raise errors.GatewayTimeout("The payment gateway did not answer in time; please try again.") from None
    except aamarpay.GatewayFailure as failure:
        raise errors.GatewayError(f"The payment gateway could not be asked: {logs.redact(failure.reason)}") from None
    gateway: dict[str, Any] = {"record": result is not None}
    if result is not None:
        gateway.update(pay_status=result.pay_status, status_code=result.status_code)
    return {**payment_view(settle(payment, result, actor_id=actor_id).payment), "gateway": gateway}
