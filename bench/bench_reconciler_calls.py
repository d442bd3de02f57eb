"""Gateway search calls per day that abandoned payments cost the reconciler, before and after its queue.

Abandoned = initiated, never paid, never returned: each is asked about until it expires. "After"
replays `reconciliation.next_due` (the schedule the code uses) for one payment from creation to
the check that expires it; "before" is the old rule (every 5-minute run asked the newest 100
`initiated` payments of the last two days, the rest never). Arithmetic only: no AWS, no gateway.

    .venv/bin/python -m bench.bench_reconciler_calls [payments]
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta

os.environ.setdefault("STAGE", "test")

from chalicelib.core.config import settings
from chalicelib.payments.reconciliation import next_due

RUNS_PER_DAY = 24 * 60 // 5
OLD_CHECKS_PER_RUN = 100


def checks_per_payment() -> int:
    """Searches one abandoned payment gets from creation until the check that expires it."""
    config = settings()
    created = datetime(2026, 1, 1, tzinfo=UTC)
    expiry = created + timedelta(seconds=config.payment_expire_after_seconds)
    due, checks = created + timedelta(seconds=config.payment_recheck_after_seconds), 0
    while due <= expiry:
        due, checks = next_due(created, checks, due, config), checks + 1
    return checks + 1  # the last one finds it past the expiry window and expires it


def main(payments: int) -> None:
    per_payment = checks_per_payment()
    before = min(payments, OLD_CHECKS_PER_RUN) * RUNS_PER_DAY
    print(f"abandoned payments per day: {payments}")
    print(f"before: {before} searches/day; {max(payments - OLD_CHECKS_PER_RUN, 0)} payments never asked about")
    print(f"after:  {per_payment * payments} searches/day ({per_payment} per payment over its 24 h); none skipped")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
