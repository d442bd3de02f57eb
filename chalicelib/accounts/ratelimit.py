"""Fixed-window counters in DynamoDB: password attempts per account or client address."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.transactions import TransactWrite

from chalicelib.core import clock, errors
from chalicelib.core.db import conditional_failed
from chalicelib.core.models import RateLimit


def hit(key: str, window_seconds: int, *, window_is_open: bool = True) -> int:
    """Add one hit to the live window, or open a new window with this hit; the hits so far.

    Callers that expect no live window pass `window_is_open=False`, trying the opening
    write first and saving the add that would fail.
    """
    if not window_is_open and start_window(key, window_seconds):
        return 1
    for _ in range(3):  # a concurrent caller may open the window between our two writes
        limit = RateLimit(key)
        try:
            limit.update(actions=[RateLimit.hits.add(1)], condition=RateLimit.expires_at > clock.now())
            return int(limit.hits)
        except UpdateError as error:
            if not conditional_failed(error):
                raise
        if start_window(key, window_seconds):
            return 1
    raise errors.TooManyRequests("Too many attempts at once; try again later.")


def start_window(key: str, window_seconds: int) -> bool:
    """Open a window with one hit unless a live one exists; True when this call opened it."""
    now = clock.now()
    try:
        RateLimit(key, hits=1, expires_at=now + timedelta(seconds=window_seconds)).save(
            condition=RateLimit.key.does_not_exist() | (RateLimit.expires_at <= now)
        )
        return True
    except PutError as error:
        if not conditional_failed(error):
            raise
        return False


def clear(key: str) -> None:
    with contextlib.suppress(DeleteError):
        RateLimit(key).delete()


def clear_in(transaction: TransactWrite, key: str) -> None:
    """End the window as part of `transaction` (a success that closes it costs no call of its own)."""
    transaction.delete(RateLimit(key))
