"""Small helpers around pynamodb's conditional and transactional write errors."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactGet, TransactWrite

CONDITION_FAILED = "ConditionalCheckFailed"
TRANSACTION_CONFLICT = "TransactionConflict"


def conditional_failed(error: Exception) -> bool:
    """True when a single-item write was refused by its condition."""
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


def cancellation_codes(error: TransactWriteError) -> list[str | None]:
    """Per-item reasons of a cancelled transaction, in the order the items were added."""
    return [reason.code if reason else None for reason in (error.cancellation_reasons or [])]


def transaction_lost_condition(error: TransactWriteError) -> bool:
    """True when some item's condition failed (a race lost or a state already moved)."""
    return CONDITION_FAILED in cancellation_codes(error)


def transaction_conflicted(error: TransactWriteError) -> bool:
    """True when DynamoDB cancelled the transaction for meeting another one on the same item."""
    return TRANSACTION_CONFLICT in cancellation_codes(error)


def write_transaction(build: Callable[[TransactWrite], None]) -> None:
    """One TransactWriteItems built by `build`, sent a second time if it met another transaction.

    A conflict changes nothing, so the retry is safe; a second conflict (or any other
    cancellation) reaches the caller, which re-reads and answers the current state.
    """
    for attempt in range(2):
        try:
            with transact_write() as transaction:
                build(transaction)
            return
        except TransactWriteError as error:
            if attempt or not transaction_conflicted(error):
                raise


@functools.lru_cache(maxsize=1)
def _connection() -> Connection:
    return Connection(region=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"))


def transact_write() -> TransactWrite:
    """All-or-nothing writes across tables (one round trip, conditions checked together)."""
    return TransactWrite(connection=_connection())


def transact_get() -> TransactGet:
    """Consistent reads across tables in one round trip."""
    return TransactGet(connection=_connection())
