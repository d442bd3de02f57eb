"""Opaque, signed list cursors and the two list shapes: one key, or a day-sharded feed.

A cursor is bound to its listing's scope (which list, whose partition, which filter):
a cursor taken from one list or user and replayed elsewhere is refused with a 400.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from chalicelib.core import clock, errors
from chalicelib.core.config import app_secrets
from chalicelib.core.validation import query_int

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
MAX_DAYS_PER_PAGE = 31

# (last evaluated key, page size) -> the items of one query page; `.last_evaluated_key` after.
QueryFn = Callable[[dict[str, Any] | None, int], Any]
# (day, last evaluated key, page size) -> the same, for one day's partition.
DayQueryFn = Callable[[str, dict[str, Any] | None, int], Any]


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_cursor: str | None

    def render(self, item_view: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        return {"items": [item_view(i) for i in self.items], "next_cursor": self.next_cursor}


def parse_limit(raw: str | None) -> int:
    """`?limit=` as an int (1 to 100, default 20)."""
    return query_int(raw, name="limit", minimum=1, maximum=MAX_LIMIT, default=DEFAULT_LIMIT, code="invalid_limit")


def _mac(scope: str, payload: bytes) -> bytes:
    key = hashlib.sha256(b"cursor:" + app_secrets().jwt_signing_key.encode()).digest()
    return hmac.new(key, scope.encode() + b"\0" + payload, hashlib.sha256).digest()[:16]


def encode_cursor(scope: str, state: dict[str, Any]) -> str:
    payload = json.dumps(state, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(_mac(scope, payload) + payload).decode().rstrip("=")


def decode_cursor(scope: str, token: str | None) -> dict[str, Any] | None:
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        mac, payload = raw[:16], raw[16:]
        if hmac.compare_digest(mac, _mac(scope, payload)):
            state = json.loads(payload)
            if isinstance(state, dict):
                return state
    except (ValueError, json.JSONDecodeError):
        pass
    raise errors.ValidationError("The cursor is invalid for this list.", code="invalid_cursor")


def newest_first(query: Callable[..., Any], key: str, **conditions: Any) -> QueryFn:
    """One partition of a table or index (its pynamodb `query`), read newest first."""

    def run(lek: dict[str, Any] | None, page_size: int) -> Any:
        return query(key, scan_index_forward=False, limit=page_size, last_evaluated_key=lek, **conditions)

    return run


def query_page(scope: str, cursor: str | None, limit: int, query: QueryFn) -> Page:
    """One page of a single-partition query, newest first."""
    state = decode_cursor(scope, cursor)
    results = query(state["k"] if state else None, limit)
    items = list(results)
    lek = results.last_evaluated_key
    return Page(items, encode_cursor(scope, {"k": lek}) if lek else None)


def days_back(newest: date, oldest: date) -> Iterator[date]:
    day = newest
    while day >= oldest:
        yield day
        day -= timedelta(days=1)


def day_feed_page(
    scope: str,
    cursor: str | None,
    limit: int,
    *,
    newest: date,
    oldest: Callable[[], date],
    query_day: DayQueryFn,
) -> Page:
    """One page of a feed partitioned by UTC day, walking days newest first.

    Each day is its own partition (no hot key for writes); the cursor remembers the day
    and the position inside it. `oldest()` bounds the walk (the first day anything exists):
    it costs a read, so it is asked only when the walk must leave a day, and the cursor
    carries its answer to the following pages. One request queries at most
    `MAX_DAYS_PER_PAGE` days: a rare filter over a long history answers a short (even
    empty) page with a cursor instead of hundreds of queries.
    """
    state = decode_cursor(scope, cursor) or {}
    day = date.fromisoformat(state["d"]) if "d" in state else newest
    lek = state.get("k")
    first_day = date.fromisoformat(state["o"]) if "o" in state else None
    items: list[Any] = []
    for walked in range(1, MAX_DAYS_PER_PAGE + 1):
        results = query_day(day.isoformat(), lek, limit - len(items))
        items.extend(results)
        lek = results.last_evaluated_key
        carried = {"o": first_day.isoformat()} if first_day else {}
        if len(items) >= limit and lek:
            return Page(items, encode_cursor(scope, {"d": day.isoformat(), "k": lek, **carried}))
        first_day = first_day or oldest()
        day -= timedelta(days=1)
        if day < first_day:
            break
        if len(items) >= limit or walked == MAX_DAYS_PER_PAGE:
            return Page(items, encode_cursor(scope, {"d": day.isoformat(), "o": first_day.isoformat()}))
        lek = None
    return Page(items, None)


def day_feed(
    scope: str,
    cursor: str | None,
    limit: int,
    *,
    by_day: Any,
    oldest: Callable[[], date],
    value: str | None = None,
    by_value_day: Any = None,
) -> Page:
    """A global feed over a `by_day` index, or over a `<value>#<day>` index when filtered."""

    def query_day(day: str, lek: dict[str, Any] | None, page_size: int) -> Any:
        index, key = (by_value_day, f"{value}#{day}") if value else (by_day, day)
        return newest_first(index.query, key)(lek, page_size)

    return day_feed_page(scope, cursor, limit, newest=clock.now().date(), oldest=oldest, query_day=query_day)


def filtered_feed(
    scope: str,
    cursor: str | None,
    limit: int,
    *,
    owner_id: str | None,
    owner_query: Callable[..., Any],
    attribute: Any,
    value: str | None,
    by_day: Any,
    by_value_day: Any,
    oldest: Callable[[], date],
) -> Page:
    """A staff list: one owner's partition (the value as a filter), or the day-sharded feed."""
    if owner_id:
        conditions = {"filter_condition": attribute == value} if value else {}
        return query_page(scope, cursor, limit, newest_first(owner_query, owner_id, **conditions))
    return day_feed(scope, cursor, limit, by_day=by_day, oldest=oldest, value=value, by_value_day=by_value_day)
