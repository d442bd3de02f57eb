"""Inject DynamoDB's `TransactionConflict`, which moto never produces, through botocore's events.

A `before-call` handler that returns a response short-circuits the HTTP request: botocore raises
the same `ClientError` (a `TransactionCanceledException` with per-item reasons) that DynamoDB sends
when a transaction meets another one on one of its items.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.awsrequest import AWSResponse

from chalicelib import db


@contextmanager
def transaction_conflicts(times: int = 1, *, after: int = 0) -> Iterator[list[int]]:
    """The next `times` TransactWriteItems (after letting `after` through) are cancelled.

    Yields a one-item list counting the conflicts injected so far.
    """
    injected = [0]
    seen = [0]

    def cancel(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        seen[0] += 1
        if seen[0] <= after or injected[0] >= times:
            return None
        injected[0] += 1
        items = len(params.get("TransactItems", [])) or 1
        reasons = [{"Code": "None"}] * (items - 1) + [
            {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}
        ]
        body = {
            "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
            "CancellationReasons": reasons,
            "ResponseMetadata": {"HTTPStatusCode": 400, "HTTPHeaders": {}},
        }
        return AWSResponse("https://dynamodb.invalid", 400, {}, None), body

    events = db._connection().client.meta.events
    events.register("before-call.dynamodb.TransactWriteItems", cancel)
    try:
        yield injected
    finally:
        events.unregister("before-call.dynamodb.TransactWriteItems", cancel)
