"""The scheduled reconciler: nothing the gateway settled is lost when the customer never comes back."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import islice

from chalicelib import clock, logs, pagination
from chalicelib.config import Settings, settings
from chalicelib.models import Payment, status_day
from chalicelib.payments.settlement import Occasion, Status, Verdict, search, settle

MAX_CHECKS_PER_RUN = 100
MAX_CONSECUTIVE_GATEWAY_FAILURES = 3
EXPIRY_SLACK_DAYS = 1  # the reconciler also looks one day further back, in case it was stopped

log = logs.get("payments")


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
        answered, result = search(payment, "reconcile")
        if not answered:
            summary["gateway_errors"] += 1
            failures_in_a_row += 1
            if failures_in_a_row >= MAX_CONSECUTIVE_GATEWAY_FAILURES:
                break
            continue
        failures_in_a_row = 0
        occasion = Occasion.EXPIRY if payment.created_at < expire_before else Occasion.CHECK
        check = settle(payment, result, occasion)
        summary["checked"] += 1
        summary[check.payment.status if check.moved else "unchanged"] += 1
        if check.verdict is Verdict.MISMATCH:
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
            status_day(Status.INITIATED, day.isoformat()),
            Payment.created_at <= checked_before,
            scan_index_forward=False,
            page_size=MAX_CHECKS_PER_RUN,
        )
