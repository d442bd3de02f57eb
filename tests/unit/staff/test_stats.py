"""Sharded counters inside transactions, daily counts, and the TransactionConflict retry."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from pynamodb.exceptions import TransactWriteError

from chalicelib.core import clock, counters, db
from chalicelib.core.models import Counter, DailyCounter
from chalicelib.staff import stats
from tests.unit.conflicts import cancelled_transactions, transaction_conflicts
from tests.unit.conftest import Api


def _today(days_ago: int = 0) -> str:
    return (clock.now() - timedelta(days=days_ago)).date().isoformat()


def _commit(deltas: dict[str, counters.Amount], day: str | None = None) -> None:
    with db.transact_write() as transaction:
        counters.add(transaction, deltas, day=day or _today())


def test_totals_sum_every_shard_in_one_batch_read(aws_resources: dict[str, Any]) -> None:
    for _ in range(40):  # 40 commits over 8 shards: several shards hold part of the count
        _commit({counters.USERS: 1, counters.revenue_key("BDT"): Decimal("100.10")})
    _commit({counters.USERS: -1})
    assert len({c.name for c in Counter.batch_get([f"users#{s}" for s in range(counters.SHARDS)])}) > 1
    assert stats.values([counters.USERS, counters.revenue_key("BDT"), "missing"]) == {
        counters.USERS: 39,
        counters.revenue_key("BDT"): Decimal("4004.00"),
        "missing": 0,
    }


def test_one_transaction_touches_each_item_once(aws_resources: dict[str, Any]) -> None:
    """Daily fields of one commit share one item (DynamoDB refuses an item twice)."""
    with db.transact_write() as transaction:
        counters.add(
            transaction,
            {**counters.moved("payments", "initiated", "success"), counters.revenue_key("BDT"): Decimal("100.00")},
            day=_today(),
        )
        items = transaction._update_items  # what will be sent: 3 totals, 1 daily shard
    keys = [tuple(sorted(v for key in item["Key"].values() for v in key.values())) for item in items]
    assert len(keys) == len(set(keys)) == 4
    row = stats.daily(1)[0]
    assert (row["payments_success"], row["revenue"]) == (1, "100.00")


def test_daily_rows_oldest_first_with_every_day_and_zeros(aws_resources: dict[str, Any]) -> None:
    _commit({counters.USERS: 1, counters.status_key("files", "completed"): 1, counters.WORDS: 9}, day=_today(2))
    _commit({counters.USERS: 1, counters.status_key("payments", "failed"): 1}, day=_today())
    _commit({counters.USERS: 5}, day=_today(5))  # outside the 3 days asked for
    rows = stats.daily(3)
    assert [row["date"] for row in rows] == [_today(2), _today(1), _today()]
    zero = {
        "users": 0,
        "payments_success": 0,
        "payments_failed": 0,
        "revenue": "0.00",
        "files_completed": 0,
        "files_failed": 0,
        "words": 0,
    }
    assert rows[0] == {"date": _today(2), **zero, "users": 1, "files_completed": 1, "words": 9}
    assert rows[1] == {"date": _today(1), **zero}
    assert rows[2] == {"date": _today(), **zero, "users": 1, "payments_failed": 1}
    assert len(stats.daily(366)) == 366
    with pytest.raises(ValueError):
        stats.daily(367)


def test_feed_start_is_the_first_day_anything_was_recorded(aws_resources: dict[str, Any]) -> None:
    assert stats.feed_start() == clock.now().date()
    _commit({counters.USERS: 1}, day=_today(3))
    _commit({counters.USERS: 1}, day=_today(9))
    assert stats.feed_start().isoformat() == _today(9)


def test_concurrent_commits_are_all_counted(aws_resources: dict[str, Any], atomic_dynamodb: None) -> None:
    threads = [threading.Thread(target=_commit, args=({counters.WORDS: 3},)) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stats.values([counters.WORDS])[counters.WORDS] == 72
    assert stats.daily(1)[0]["words"] == 72


# --- TransactionConflict: DynamoDB raises it, moto never does, so it is injected ----------


def test_a_conflict_is_retried_until_it_commits(aws_resources: dict[str, Any]) -> None:
    with cancelled_transactions(("None", "TransactionConflict"), ("TransactionConflict", "None")) as calls:
        _commit({counters.USERS: 1})
    assert len(calls) == 3
    assert stats.values([counters.USERS])[counters.USERS] == 1


def test_a_lost_condition_is_not_retried(aws_resources: dict[str, Any]) -> None:
    lost = ("ConditionalCheckFailed", "TransactionConflict")
    with cancelled_transactions(lost) as calls, pytest.raises(TransactWriteError) as raised:
        _commit({counters.USERS: 1})
    assert db.transaction_lost_condition(raised.value)
    assert len(calls) == 1
    assert stats.values([counters.USERS])[counters.USERS] == 0


def test_endless_conflicts_give_up(aws_resources: dict[str, Any]) -> None:
    with transaction_conflicts(db.CONFLICT_ATTEMPTS) as calls, pytest.raises(TransactWriteError) as raised:
        _commit({counters.USERS: 1})
    assert db.conflicted(raised.value)
    assert len(calls) == db.CONFLICT_ATTEMPTS


def test_registration_survives_a_conflict(api: Api) -> None:
    """The route's own transaction (user, claims, entry, counters) goes through the retry."""
    with cancelled_transactions(("None", "None", "None", "None", "TransactionConflict", "None")) as calls:
        assert api.register("carol").status_code == 201
    assert len(calls) == 2
    assert stats.values([counters.USERS])[counters.USERS] == 1
    assert stats.daily(1)[0]["users"] == 1
    assert DailyCounter.count(counters.SCOPE) == 1
