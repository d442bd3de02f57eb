"""SQS batches with partial batch responses: each message handled alone, the failed ones reported.

Lambda's SQS event source mapping hands a function up to `batch_size` messages, waiting up to
the batching window to fill the batch. With `ReportBatchItemFailures` on the mapping, the
function answers `{"batchItemFailures": [{"itemIdentifier": <messageId>}, ...]}`: those
messages alone return to the queue (and, after maxReceiveCount, to its DLQ); the rest are
deleted. So a poison message fails alone, and its neighbours are not delivered again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from chalicelib.core import logs

# Pollers per queue-fed function (the mapping's ScalingConfig, at least 2): a cap on how much
# of the account's concurrency a burst of uploads or emails may take, without reserving any.
MAXIMUM_CONCURRENCY = 5

log = logs.get("batches")


def each_record(records: Iterable[dict[str, Any]], handle: Callable[[list[dict[str, Any]]], Any]) -> dict[str, Any]:
    """`handle([record])` for every record; the partial batch response naming those that raised."""
    failures = []
    for record in records:
        try:
            handle([record])
        except Exception:  # any failure of one message is that message's: SQS retries it alone
            log.exception(
                "message failed; returned to the queue", extra={"fields": {"message_id": record["messageId"]}}
            )
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
