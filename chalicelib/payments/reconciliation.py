"""The scheduled reconciler: nothing the gateway settled is lost when the customer never comes back.

Payments that still need a re-check sit in a sparse index (`by_next_check`: one queue, sorted by
due time). Each run takes the longest-due first and every check moves that payment's due time
back (doubling from `PAYMENT_RECHECK_AFTER_SECONDS` up to `MAX_BACKOFF`), so the order survives
runs and no account's payments can keep another's from being asked about: a payment due now waits
only behind payments due earlier. `initiated` payments are expired once past the expiry window;
`failed` and `cancelled` ones stay queued until then (money taken after a cancel is found).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from pynamodb.exceptions import UpdateError
from pynamodb.expressions.update import Action

from chalicelib.core import clock, logs, metrics
from chalicelib.core.config import Settings, settings
from chalicelib.core.models import Payment
from chalicelib.payments import aamarpay
from chalicelib.payments.settlement import (
    CHECK_QUEUE,
    Occasion,
    Status,
    Verdict,
    claim_search,
    is_final,
    search,
    settle,
)

MAX_CHECKS_PER_RUN = 100
MAX_CONSECUTIVE_GATEWAY_FAILURES = 3
MAX_BACKOFF = timedelta(hours=4)

log = logs.get("payments")


def reconcile_pending(*, max_checks: int = MAX_CHECKS_PER_RUN) -> dict[str, int]:
    """Ask the gateway about the payments due for a re-check, oldest due first; expire abandoned ones.

    Bounded per run (`max_checks`, and a stop after repeated gateway failures, or at once when the
    gateway refuses our credentials: every call would fail). "No such transaction" is an answer,
    not a failure. A payment some return or read asked about in the last 10 s is only
    rescheduled, not asked again.
    """
    config = settings()
    now = clock.now()
    expire_before = clock.iso(now - timedelta(seconds=config.payment_expire_after_seconds))
    summary = dict.fromkeys(
        ("checked", "success", "review", "failed", "expired", "unchanged", "mismatches", "gateway_errors"), 0
    )
    failures_in_a_row = 0
    due = Payment.by_next_check.query(CHECK_QUEUE, Payment.next_check_at <= clock.iso(now), limit=max_checks)
    for queued in due:
        reschedule = _reschedule(queued, now, config)
        payment, slot = claim_search(queued.transaction_id, then=reschedule)
        if payment is None or not slot:
            if payment is not None:  # settled meanwhile (the index lags), or asked seconds ago
                _requeue(payment, [Payment.check_queue.remove()] if is_final(payment) else reschedule)
            continue
        asked = search(payment, "reconcile")
        if not asked.answered:
            summary["gateway_errors"] += 1
            failures_in_a_row += 1
            if isinstance(asked.failure, aamarpay.GatewayAuthFailed):
                break
            if failures_in_a_row >= MAX_CONSECUTIVE_GATEWAY_FAILURES:
                break
            continue
        failures_in_a_row = 0
        past_expiry = payment.created_at < expire_before
        check = settle(payment, asked.result, Occasion.EXPIRY if past_expiry else Occasion.CHECK)
        summary["checked"] += 1
        summary[check.payment.status if check.moved else "unchanged"] += 1
        if check.verdict is Verdict.MISMATCH:
            summary["mismatches"] += 1
            logs.event(log, "gateway answer does not match", logging.WARNING, transaction_id=payment.transaction_id)
        if past_expiry and check.payment.status in (Status.FAILED, Status.CANCELLED):
            _requeue(check.payment, [Payment.check_queue.remove()])  # its last re-check
    settled = summary["success"] + summary["failed"] + summary["expired"]
    metrics.count("ReconcilerChecked", summary["checked"])
    metrics.count("ReconcilerSettled", settled)
    metrics.gauge("ReconcilerBacklogAge", _backlog_age(clock.now()))  # every run: missing data alarms
    logs.event(log, "payments reconciled", **summary)
    return summary


def _backlog_age(now: datetime) -> float:
    """Seconds since the oldest payment still due became due (0 when none is): one Query."""
    oldest = next(
        iter(Payment.by_next_check.query(CHECK_QUEUE, Payment.next_check_at <= clock.iso(now), limit=1)), None
    )
    if oldest is None or not oldest.next_check_at:
        return 0.0
    return max(0.0, (now - clock.parse_iso(oldest.next_check_at)).total_seconds())


def next_due(created_at: datetime, checks: int, now: datetime, config: Settings) -> datetime:
    """When a payment checked `checks` times is due again: the delay doubles per check up to
    `MAX_BACKOFF`, and an open payment's expiry check is never postponed past the expiry."""
    delay = min(timedelta(seconds=config.payment_recheck_after_seconds * 2 ** min(checks, 20)), MAX_BACKOFF)
    expiry = created_at + timedelta(seconds=config.payment_expire_after_seconds + 1)
    return expiry if now < expiry < now + delay else now + delay


def _reschedule(payment: Payment, now: datetime, config: Settings) -> list[Action]:
    checks = int(payment.checks or 0)
    due = next_due(clock.parse_iso(payment.created_at), checks, now, config)
    return [Payment.next_check_at.set(clock.iso(due)), Payment.checks.set(checks + 1)]


def _requeue(payment: Payment, actions: list[Action]) -> None:
    """Queue bookkeeping; a payment that vanished or moved meanwhile is no reason to stop the run."""
    try:
        payment.update(actions=actions, condition=Payment.transaction_id.exists())
    except UpdateError as error:
        logs.event(
            log, "payment reschedule skipped", logging.WARNING, transaction_id=payment.transaction_id, error=str(error)
        )
