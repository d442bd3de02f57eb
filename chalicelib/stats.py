"""Statistics kept as atomic counters updated when events happen (never computed by scans)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib import clock
from chalicelib.models import Counter

USERS = "users"


def increment(name: str, by: int | Decimal = 1) -> None:
    # NumberAttribute serializes with json.dumps, which refuses Decimal. A money amount's float
    # repr is its exact decimal text ("100.1"), and DynamoDB adds number strings exactly.
    Counter(name).update(actions=[Counter.value.add(float(by) if isinstance(by, Decimal) else by)])


def status_key(kind: str, status: str) -> str:
    """Counter name for "how many <kind> are in <status> now", e.g. `payments#success`."""
    return f"{kind}#{status}"


def moved(kind: str, from_status: str | None, to_status: str) -> None:
    """Keep per-status counts current after a committed transition (two atomic adds)."""
    if from_status == to_status:
        return
    if from_status is not None:
        increment(status_key(kind, from_status), -1)
    increment(status_key(kind, to_status))


def user_created() -> None:
    """Count a user and remember the first day: global day-sharded feeds start there."""
    today = clock.now().date().isoformat()
    Counter(USERS).update(actions=[Counter.value.add(1), Counter.since.set(Counter.since | today)])


def feed_start() -> date:
    try:
        since = Counter.get(USERS).since
    except DoesNotExist:
        since = None
    return date.fromisoformat(since) if since else clock.now().date()


def values(names: list[str]) -> dict[str, Any]:
    """Current value of each named counter (missing ones are 0), in one batch read."""
    found = {c.name: c.value for c in Counter.batch_get(names)}
    return {name: found.get(name, 0) for name in names}
