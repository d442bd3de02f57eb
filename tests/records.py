"""Records written straight to the tables, for tests that need many, old or odd ones cheaply
(the real paths are tested on their own)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib.core import clock
from chalicelib.core.models import Payment, status_day


def payment(user_id: str, status: str, *, days_ago: float = 0, **fields: Any) -> Payment:
    """An unsaved ৳100 payment in `status`, made `days_ago` days ago, with its index keys."""
    created_at = clock.iso(clock.now() - timedelta(days=days_ago))
    return Payment(
        clock.new_id(),
        user_id=user_id,
        status=status,
        amount="100.00",
        currency="BDT",
        created_at=created_at,
        updated_at=created_at,
        day=clock.day_of(created_at),
        status_day=status_day(status, created_at),
        **fields,
    )
