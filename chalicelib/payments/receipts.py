"""The receipt of a successful payment, sent once per payment (dedupe key `receipt#<id>`).

`settlement.move` queues the job from the one call that wins the move to `success`; the mail
worker's state machine (`chalicelib.mail.delivery`) sends each key once, so returns, reconciler
runs and a superuser's verify that meet the same payment add no second email.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.core.models import Payment, User
from chalicelib.mail.delivery import Outgoing
from chalicelib.mail.messages import Letter
from chalicelib.payments.settlement import Status, receipt_key


def receipt_mails(job: dict[str, Any]) -> Iterator[Outgoing]:
    transaction_id = str(job.get("transaction_id") or "")
    yield Outgoing(receipt_key(transaction_id), partial(_receipt_letter, transaction_id))


def _receipt_letter(transaction_id: str) -> Letter | None:
    try:
        payment = Payment.get(transaction_id, consistent_read=True)
        user = User.get(payment.user_id)
    except DoesNotExist:
        return None
    if payment.status != Status.SUCCESS:
        return None
    return Letter(
        user.email,
        "receipt",
        user.language or "en",
        {
            "username": user.username,
            "amount": payment.amount,
            "currency": payment.currency,
            "transaction_id": payment.transaction_id,
            "gateway_transaction_id": payment.gateway_transaction_id or "-",
            "time": payment.updated_at,
        },
    )
