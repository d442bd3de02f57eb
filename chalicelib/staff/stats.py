"""The admin's figures, read back from the sharded counters (`chalicelib.core.counters`).

Totals are summed over their shards in one BatchGetItem; any run of days is one Query on the
daily counters. Exact because every change writes its counts inside its own transaction.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from chalicelib.core import clock
from chalicelib.core.counters import DAILY_FIELDS, SCOPE, SHARDS
from chalicelib.core.models import Counter, DailyCounter

MAX_DAYS = 366


def _exact(value: Any) -> Decimal:
    # pynamodb reads numbers with json.loads (floats); their repr is DynamoDB's exact text.
    return Decimal(str(value))


def _whole(total: Decimal) -> int | Decimal:
    return int(total) if total == total.to_integral_value() else total


def values(names: list[str]) -> dict[str, int | Decimal]:
    """Current value of each named counter (its shards summed; missing ones are 0), in one
    batch read."""
    totals = dict.fromkeys(names, Decimal(0))
    keys = [f"{name}#{shard}" for name in names for shard in range(SHARDS)]
    for item in Counter.batch_get(keys):
        totals[item.name.rpartition("#")[0]] += _exact(item.value)
    return {name: _whole(total) for name, total in totals.items()}


def daily_sums(first: date, last: date) -> dict[date, dict[str, Decimal]]:
    """Every day from `first` to `last` (zeros included) with its shards summed: one Query."""
    days = (last - first).days + 1
    sums = {first + timedelta(days=n): dict.fromkeys(DAILY_FIELDS, Decimal(0)) for n in range(days)}
    span = DailyCounter.sk.between(f"{first.isoformat()}#", f"{last.isoformat()}#~")
    for item in DailyCounter.query(SCOPE, span):
        row = sums[date.fromisoformat(item.sk.partition("#")[0])]
        for field in DAILY_FIELDS:
            row[field] += _exact(getattr(item, field) or 0)
    return sums


def daily(days: int) -> list[dict[str, Any]]:
    """The last `days` UTC days' counts, oldest first, today last, every day present
    (zeros included); revenue as a "0.00" string."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1..{MAX_DAYS}, not {days}")
    today = clock.now().date()
    sums = daily_sums(today - timedelta(days=days - 1), today)
    return [_rendered(day, row) for day, row in sums.items()]


def _rendered(day: date, row: dict[str, Decimal]) -> dict[str, Any]:
    """The contract's row: whole counts, and revenue as money text."""
    shown = {field: f"{row[field]:.2f}" if field == "revenue" else int(row[field]) for field in DAILY_FIELDS}
    return {"date": day.isoformat(), **shown}


def feed_start() -> date:
    """The first day anything was recorded (global day-sharded feeds start there): the day
    of the first daily item, or today when there is none yet."""
    for item in DailyCounter.query(SCOPE, limit=1):
        return date.fromisoformat(item.sk.partition("#")[0])
    return clock.now().date()
