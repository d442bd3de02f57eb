"""Cancel DynamoDB transactions on purpose, through botocore's events: `TransactionConflict`
above all, which DynamoDB raises whenever two transactions meet on an item and moto never does.

A `before-call` handler that returns a response short-circuits the HTTP request: botocore raises
the same `ClientError` (a `TransactionCanceledException` with per-item reasons) that DynamoDB
sends, and pynamodb turns it into a `TransactWriteError`, as it would in AWS.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse

from chalicelib.core import db

Codes = tuple[str, ...]
CONFLICT: Codes = ("TransactionConflict",)


@contextmanager
def cancelled_transactions(*answers: Codes | None) -> Iterator[list[Codes | None]]:
    """Each TransactWriteItems sent inside gets the next of `answers`: the per-item
    cancellation codes DynamoDB would send ("None" for an item that was fine), or None to
    let it through; once they run out, DynamoDB's own answer. Yields what each call got."""
    pending, seen = list(answers), []

    def cancel(**_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        codes = pending.pop(0) if pending else None
        seen.append(codes)
        if codes is None:
            return None
        body = {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
            "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}},
        }
        return AWSResponse("https://dynamodb.invalid", 400, {}, None), body

    events = db._connection().client.meta.events
    events.register("before-call.dynamodb.TransactWriteItems", cancel)
    try:
        yield seen
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", cancel)


def transaction_conflicts(times: int = 1) -> AbstractContextManager[list[Codes | None]]:
    """The next `times` transactions meet another one (`seen.count(CONFLICT)` says how many did)."""
    return cancelled_transactions(*[CONFLICT] * times)
