"""Fixed-window counters in DynamoDB: failed logins, gateway re-checks on read."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from pynamodb.exceptions import DeleteError, PutError, UpdateError

from chalicelib import clock
from chalicelib.db import conditional_failed
from chalicelib.models import RateLimit


def hit(key: str, window_seconds: int, *, window_is_open: bool = True) -> None:
    """Add one hit to the live window, or open a new window with this hit.

    Callers that just read the counter pass `window_is_open=False` when none was live,
    saving the add that would fail.
    """
    if not window_is_open and start_window(key, window_seconds):
        return
    for _ in range(2):  # a concurrent caller may open the window between our two writes
        try:
            RateLimit(key).update(actions=[RateLimit.count.add(1)], condition=RateLimit.expires_at > clock.now())
            return
        except UpdateError as error:
            if not conditional_failed(error):
                raise
        if start_window(key, window_seconds):
            return


def start_window(key: str, window_seconds: int) -> bool:
    """Open a window with one hit unless a live one exists; True when this call opened it."""
    now = clock.now()
    try:
        RateLimit(key, count=1, expires_at=now + timedelta(seconds=window_seconds)).save(
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
