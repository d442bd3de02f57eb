"""Payments through aamarPay: our record first, the gateway's search API as the only authority.

| module | job |
|---|---|
| `initiation` | the record, its idempotency claim, then the gateway's hosted page |
| `returns` | the browser's success/fail/cancel returns: a hint naming a payment |
| `settlement` | the verdict, the transition rule and `settle`: the one place a payment changes state |
| `reconciliation` | the scheduled re-check of payments whose customer never came back |
| `reads` | the owner's list and record, the superuser's verify |
| `aamarpay` | the gateway's wire format, nothing of our tables |
"""

from chalicelib.payments.initiation import initiate
from chalicelib.payments.reads import get_for_user, list_for_user, payment_view, verify_now
from chalicelib.payments.reconciliation import reconcile_pending
from chalicelib.payments.returns import ReturnOutcome, handle_return
from chalicelib.payments.settlement import Occasion, Status, settle

INITIATED, SUCCESS, FAILED, CANCELLED, EXPIRED = (
    Status.INITIATED,
    Status.SUCCESS,
    Status.FAILED,
    Status.CANCELLED,
    Status.EXPIRED,
)

__all__ = [
    "CANCELLED",
    "EXPIRED",
    "FAILED",
    "INITIATED",
    "SUCCESS",
    "Occasion",
    "ReturnOutcome",
    "Status",
    "get_for_user",
    "handle_return",
    "initiate",
    "list_for_user",
    "payment_view",
    "reconcile_pending",
    "settle",
    "verify_now",
]
