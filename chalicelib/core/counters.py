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

This module writes them (accounts, files and payments call `add` in their transactions);
`chalicelib.staff.stats` reads them back for the admin's figures.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import date
from decimal import Decimal

from pynamodb.transactions import TransactWrite

from chalicelib.core.models import Counter, DailyCounter

SHARDS = 7  # x 13 counters of the admin's stats: 91 keys, one BatchGetItem (at most 100)
SCOPE = "all"
USERS = "users"
WORDS = "words"
DAILY_FIELDS = ("users", "payments_success", "payments_failed", "revenue", "files_completed", "files_failed", "words")

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
