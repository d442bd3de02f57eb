"""The review queue: a verified success that the card's issuer flagged waits here for a superuser.

Approving grants it (`success`: uploads open, the receipt goes, the counters move); rejecting
ends it `failed` for good (aamarPay has no refund API: the money goes back through its merchant
panel, and nothing the gateway says later lifts a rejected payment). Each decision is one
conditional move out of `review` (`settlement.move`): of two superusers deciding at once, one
wins and the other gets `409 invalid_state`.
"""

from __future__ import annotations

from chalicelib.core import db, errors
from chalicelib.core.models import Payment
from chalicelib.payments.settlement import REJECTED, Status, move

MAX_NOTE_LENGTH = 500
APPROVED = "approved"


def approve(transaction_id: str, *, actor_id: str) -> Payment:
    """`review` → `success`, logged as `payment_approved` with the actor."""
    payment, moved = move(
        _in_review(transaction_id),
        Status.SUCCESS,
        via="review",
        actor_id=actor_id,
        action="payment_approved",
        decision=APPROVED,
    )
    return _decided(payment, moved)


def reject(transaction_id: str, *, actor_id: str, note: str | None = None) -> Payment:
    """`review` → `failed` for good, logged as `payment_rejected`; the reason says to refund."""
    said = f" ({note.strip()})" if note and note.strip() else ""
    payment, moved = move(
        _in_review(transaction_id),
        Status.FAILED,
        via="review",
        actor_id=actor_id,
        action="payment_rejected",
        decision=REJECTED,
        reason=f"rejected in review{said}; refund the customer in aamarPay's merchant panel",
    )
    return _decided(payment, moved)


def _in_review(transaction_id: str) -> Payment:
    payment = db.get_or_404(Payment, transaction_id, "No such transaction.", consistent_read=True)
    if payment.status != Status.REVIEW:
        raise _not_in_review(payment)
    return payment


def _decided(payment: Payment, moved: bool) -> Payment:
    if moved:
        return payment
    if payment.status == Status.REVIEW:  # DynamoDB cancelled the move twice (TransactionConflict)
        raise errors.Conflict("Another request met this one; please try again.", code="conflict")
    raise _not_in_review(payment)  # another superuser decided first


def _not_in_review(payment: Payment) -> errors.Conflict:
    return errors.Conflict(f"The payment is {payment.status}, not in review.", code="invalid_state")
