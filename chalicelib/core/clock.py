"""Time and id helpers: one place decides the wire format of both."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC to the microsecond with a `Z`: sorts as text, and records made one after
    the other (the range keys of every list) keep their order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    return iso(now())


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def day_of(timestamp: str) -> str:
    """The `YYYY-MM-DD` shard of an ISO timestamp (global feeds are partitioned by day)."""
    return timestamp[:10]


def new_id() -> str:
    """An unguessable 128-bit id (UUID4, 32 hex characters: fits aamarPay's tran_id)."""
    return uuid.uuid4().hex


_ID = re.compile(r"^[0-9a-f]{32}$")


def is_id(text: str) -> bool:
    """Whether `text` has the shape of an id we hand out (checked before any lookup)."""
    return bool(_ID.match(text))
