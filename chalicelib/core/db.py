"""The one seam to pynamodb beyond its models: conditional and transactional writes, their
errors, the conditional update that returns the item either way, and get-or-404.

Domain modules use models and these helpers; pynamodb's internals (`_get_connection`, the
botocore client it holds) are touched here only."""

from __future__ import annotations

import functools
import os
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from botocore.exceptions import ClientError
from pynamodb.connection import Connection
from pynamodb.connection import base as pynamodb_connection
from pynamodb.constants import ALL_NEW, ALL_OLD
from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.models import Model
from pynamodb.transactions import TransactGet, TransactWrite

from chalicelib.core import aws, clock, errors

CONDITION_FAILED = "ConditionalCheckFailed"
TRANSACTION_CONFLICT = "TransactionConflict"
CONFLICT_ATTEMPTS = 8
CONFLICT_BACKOFF_SECONDS = 0.01  # doubled each attempt, full jitter

T = TypeVar("T")
M = TypeVar("M", bound=Model)


def conditional_failed(error: Exception) -> bool:
    """True when a single-item write was refused by its condition."""
    return getattr(error, "cause_response_code", None) == "ConditionalCheckFailedException"


def cancellation_codes(error: TransactWriteError) -> list[str | None]:
    """Per-item reasons of a cancelled transaction, in the order the items were added."""
    return [reason.code if reason else None for reason in (error.cancellation_reasons or [])]


def transaction_lost_condition(error: TransactWriteError) -> bool:
    """True when some item's condition failed (a race lost or a state already moved)."""
    return CONDITION_FAILED in cancellation_codes(error)


def conflicted(error: TransactWriteError) -> bool:
    """True when DynamoDB cancelled the transaction only because another one was writing one
    of its items at the same time (sharded counters make that rare, not impossible): nothing
    was written and the same request may simply be sent again."""
    codes = cancellation_codes(error)
    return TRANSACTION_CONFLICT in codes and CONDITION_FAILED not in codes


def retry_conflicts(operation: Callable[[], T], *, attempts: int = CONFLICT_ATTEMPTS) -> T:
    """Run `operation`, again after a short random pause while it fails with a conflict."""
    for attempt in range(attempts - 1):
        try:
            return operation()
        except TransactWriteError as error:
            if not conflicted(error):
                raise
        time.sleep(random.uniform(0, CONFLICT_BACKOFF_SECONDS * 2**attempt))  # noqa: S311 (jitter)
    return operation()


class RetryingTransactWrite(TransactWrite):
    """A TransactWrite whose commit is retried on `TransactionConflict` (moto never raises
    it; DynamoDB does whenever two transactions meet on an item, e.g. a counter shard).

    `_commit` is pynamodb's private commit step, the one place every transaction passes. The
    tests that inject conflicts at botocore's boundary (`tests/unit/conflicts.py`) pin it: were
    it renamed, the retry would be skipped and they would fail."""

    def _commit(self) -> Any:
        return retry_conflicts(super()._commit)


class _OneSession:
    """What pynamodb asks of the botocore session it makes per connection (`create_client`),
    answered by the app's one session. pynamodb makes a session for each model's connection,
    and each new session parses botocore's endpoint and model files again: 13 clients cost
    0.65 CPU-s from sessions of their own, 0.12 from one (paid on a cold start, per table)."""

    @staticmethod
    def create_client(*args: Any, **kwargs: Any) -> Any:
        return aws.create_client(*args, **kwargs)


def share_one_session() -> None:
    """Route every pynamodb connection's client through `_OneSession` (before the first request)."""
    pynamodb_connection.get_session = _OneSession  # type: ignore[assignment]  # duck-typed: create_client only


@functools.lru_cache(maxsize=1)
def _connection() -> Connection:
    return Connection(region=os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"))


def transact_write() -> TransactWrite:
    """All-or-nothing writes across tables (one round trip, conditions checked together),
    retried when cancelled by a conflict."""
    return RetryingTransactWrite(connection=_connection())


def transact_get() -> TransactGet:
    """Consistent reads across tables in one round trip."""
    return TransactGet(connection=_connection())


def get_or_404(model: type[M], key: str, message: str, *, consistent_read: bool = False) -> M:
    """The item whose hash key is `key`, else 404 `message`. A key not shaped like the ids we
    hand out is never looked up: it cannot be ours (and could be too long for a key)."""
    if clock.is_id(key):
        try:
            return model.get(key, consistent_read=consistent_read)
        except DoesNotExist:
            pass
    raise errors.NotFound(message)


def update_returning_item(
    model: type[M], key: str, *, actions: Sequence[Action], condition: Condition
) -> tuple[M | None, bool]:
    """One conditional UpdateItem: `(the updated item, True)`, or when the condition refused it
    `(the item as it stood, or None if there is none, False)`, at the cost of one write.

    pynamodb's `update` raises an error that drops the item DynamoDB sends back with
    `ALL_OLD`, so the request goes through the botocore client its connection holds."""
    connection = model._get_connection()
    request = connection.get_operation_kwargs(
        key,
        actions=list(actions),
        condition=condition,
        return_values=ALL_NEW,
        return_values_on_condition_failure=ALL_OLD,
    )
    try:
        client: Any = connection.connection.client
        reply = client.update_item(**request)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        item: dict[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
        return (model.from_raw_data(item) if item else None), False
    return model.from_raw_data(reply["Attributes"]), True
