"""Exact statistics: sharded counters written inside the transaction that makes the change.

A count written after the commit costs a round trip and is lost for ever if the process dies
in between; written as part of the commit, it is exact by construction (the contract's
"Stats are exact"). Each transaction adds its deltas to one shard, chosen at random, of:
- the running totals (`Counter`, key `<name>#<shard>`), read back in one BatchGetItem;
- the day's counts (`DailyCounter`, `<YYYY-MM-DD>#<shard>`), any run of days read in one Query.
Concurrent transactions then rarely meet on an item (DynamoDB cancels those that do with a
`TransactionConflict`, which `db.transact_write` retries).

Daily counts are filed under the day the record was *created* (its `day` attribute): that day
never changes, so a recount re-derives every daily figure from the same day-sharded indexes.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pynamodb.transactions import TransactWrite

from chalicelib import clock
from chalicelib.models import Counter, DailyCounter

SHARDS = 7  # x 13 counters of the admin's stats: 91 keys, one BatchGetItem (at most 100)
SCOPE = "all"
USERS = "users"
WORDS = "words"
DAILY_FIELDS = ("users", "payments_success", "payments_failed", "revenue", "files_completed", "files_failed", "words")
MAX_DAYS = 366

Amount = int | Decimal


def status_key(kind: str, status: str) -> str:
    """Counter name for "how many <kind> are in <status> now", e.g. `payments#success`."""
    return f"{kind}#{status}"


def revenue_key(currency: str) -> str:
    return f"revenue#{currency}"


def moved(kind: str, from_status: str | None, to_status: str) -> dict[str, Amount]:
    """The deltas of one record moving between statuses (None: it is new)."""
    if from_status == to_status:
        return {}
    deltas: dict[str, Amount] = {status_key(kind, to_status): 1}
    if from_status is not None:
        deltas[status_key(kind, from_status)] = -1
    return deltas


def daily_field(name: str) -> str | None:
    """The daily attribute a total also feeds (`payments#success` -> `payments_success`)."""
    if name.startswith("revenue#"):
        return "revenue"
    field = name.replace("#", "_")
    return field if field in DAILY_FIELDS else None


def _number(value: Amount) -> int | float:
    # NumberAttribute serializes with json.dumps, which refuses Decimal. A money amount's float
    # repr is its exact decimal text ("100.1"), and DynamoDB adds number strings exactly.
    return float(value) if isinstance(value, Decimal) else value


def add(transaction: TransactWrite, deltas: Mapping[str, Amount], *, day: str) -> None:
    """Add `deltas` (counter name -> amount) to the totals and to `day`'s counts, as part of
    `transaction`. Call it once per transaction: DynamoDB refuses one that touches an item
    twice, so every daily field goes into the one update of that day's shard."""
    changes = {name: amount for name, amount in deltas.items() if amount}
    if not changes:
        return
    shard = random.randrange(SHARDS)  # noqa: S311 (load spreading, not a secret)
    for name, amount in changes.items():
        transaction.update(Counter(f"{name}#{shard}"), actions=[Counter.value.add(_number(amount))])
    daily = [
        getattr(DailyCounter, field).add(_number(amount))
        for name, amount in changes.items()
        if (field := daily_field(name))
    ]
    if daily:
        transaction.update(DailyCounter(SCOPE, f"{day}#{shard}"), actions=daily)


def adjust(totals: Mapping[str, Amount], days: Mapping[date, Mapping[str, Amount]]) -> None:
    """Add corrections (a recount's drift) to shard 0: adds, so concurrent commits keep theirs."""
    for name, amount in totals.items():
        if amount:
            Counter(f"{name}#0").update(actions=[Counter.value.add(_number(amount))])
    for day, fields in days.items():
        actions = [getattr(DailyCounter, field).add(_number(amount)) for field, amount in fields.items() if amount]
        if actions:
            DailyCounter(SCOPE, f"{day.isoformat()}#0").update(actions=actions)


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
