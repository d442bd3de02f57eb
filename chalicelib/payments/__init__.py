"""Payments through aamarPay: our record first, the gateway's search API as the only authority.

| module | job |
|---|---|
| `initiation` | the record, its idempotency claim, then the gateway's hosted page |
| `returns` | the browser's success/fail/cancel returns: a hint naming a payment |
| `settlement` | the verdict, the transition rule and `settle`: the one place a payment changes state |
| `reconciliation` | the scheduled re-check of payments whose customer never came back |
| `reads` | the owner's list and record, the superuser's verify; `payment_view`, every answer's payment |
| `receipts` | the receipt email of a successful payment, once per payment (the mail worker composes it) |
| `aamarpay` | the gateway's wire format, nothing of our tables |

Each name below is imported from its module at its first use (PEP 562), so a function pays
on its cold start only for what it calls: the reconciler never imports initiation or returns.

May import: `chalicelib.core`, and `chalicelib.accounts` for the caller's type (`Principal`,
type hints only), and `chalicelib.mail` to queue and compose receipts. Never files, staff or dashboard.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chalicelib.payments.initiation import initiate
    from chalicelib.payments.reads import get_for_user, list_for_user, payment_view, verify_now
    from chalicelib.payments.reconciliation import reconcile_pending
    from chalicelib.payments.returns import ReturnOutcome, handle_return
    from chalicelib.payments.settlement import Occasion, Status, settle

_HOMES = {
    "initiate": "initiation",
    "get_for_user": "reads",
    "list_for_user": "reads",
    "payment_view": "reads",
    "verify_now": "reads",
    "reconcile_pending": "reconciliation",
    "ReturnOutcome": "returns",
    "handle_return": "returns",
    "Occasion": "settlement",
    "Status": "settlement",
    "settle": "settlement",
}

__all__ = [
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


if not TYPE_CHECKING:  # mypy reads the imports above: an unknown name is its error, not `Any`

    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
        globals()[name] = value  # later reads are plain module attributes
        return value
