"""Staff figures: AWS calls and time of a named list page, a user search, and the CSV export.

Run: `.venv/bin/python bench/bench_admin.py [--payments N]`. moto's in-process mock (so times
are moto's, useful to compare, not DynamoDB's), calls counted at botocore's client boundary.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from bench.in_process import moto_stack  # noqa: E402


def main(payments: int, users: int) -> None:
    with moto_stack() as calls:
        from chalicelib.accounts import directory
        from chalicelib.core import clock
        from chalicelib.core.models import Payment, User, search_keys
        from chalicelib.staff import admin, export
        from tests import records

        today = clock.now().date()
        ids = []
        with User.batch_write() as batch:
            for n in range(users):
                created = clock.iso(clock.now() - timedelta(days=n % 30))
                name = f"user{n:05d}"
                user = User(clock.new_id(), username=name, email=f"{name}@example.com", password_hash="x")
                user.created_at, user.day = created, clock.day_of(created)
                for key, value in search_keys(name, user.email).items():
                    setattr(user, key, value)
                batch.save(user)
                ids.append(user.id)
        with Payment.batch_write() as batch:
            for n in range(payments):
                status = "success" if n % 3 else "failed"
                batch.save(records.payment(ids[n % users], status, days_ago=n % 30 + n / 86400))
        start = today - timedelta(days=29)

        def measure(label: str, run: Any) -> Any:
            calls.clear()
            started = time.perf_counter()
            result = run()
            elapsed = (time.perf_counter() - started) * 1000
            print(f"{label:<48} {elapsed:8.1f} ms  calls {dict(calls)}")
            return result

        from chalicelib.staff import stats

        stats.feed_start = lambda: start  # type: ignore[assignment]  # the bench's first day
        measure("payments page of 100 with names", lambda: admin.list_payments(None, {}, 100, None))  # type: ignore[arg-type]
        measure("names for 100 distinct ids", lambda: directory.usernames(ids[:100]))
        measure("search q=user0 (first page of 20)", lambda: directory.search("user0", 20, None))
        measure("search q=u (one-character prefix, 20)", lambda: directory.search("u", 20, None))
        body = measure(f"export 30 days, {payments} payments", lambda: export.transactions_csv(start, today, None))
        print(f"export body: {len(body.encode()) / 1e6:.2f} MB, {body.count(chr(10)) - 1} rows")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--payments", type=int, default=3000)
    parser.add_argument("--users", type=int, default=500)
    arguments = parser.parse_args()
    main(arguments.payments, arguments.users)
