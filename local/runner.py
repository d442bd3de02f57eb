"""Run the app's SQS and schedule handlers locally the way Lambda would.

`chalice local` serves routes only. An `SqsPoller` plays Lambda's event source mapping with
the handler's own settings (`sqs_pollers` reads them from the Chalice app): long-poll, fill a
batch of up to `batch_size` messages for at most the batching window, one Lambda-shaped event
(distinct message ids, receipt handles, attributes such as `ApproximateReceiveCount`), then
as `ReportBatchItemFailures` does: delete every message but those the partial batch response
names; on an exception, or a response naming no message of the batch, delete none. What
stays comes back after the visibility timeout, and the redrive policy moves it after
maxReceiveCount, exactly as on AWS. A `Scheduler` plays EventBridge for `@app.schedule`
handlers.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from chalice.local import LambdaContext

from chalicelib.core import aws, clock, logs

log = logs.get("runner")
Handler = Callable[[dict[str, Any], Any], Any]
MAX_RECEIVE = 10  # SQS's ReceiveMessage limit; a mapping fills bigger batches over several calls


def lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda hands an SQS-triggered function, built from ReceiveMessage output."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": message.get("MessageAttributes", {}),
                "md5OfBody": message.get("MD5OfBody")
                or hashlib.md5(message["Body"].encode(), usedforsecurity=False).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for message in messages
        ]
    }


def _context(function_name: str, timeout_seconds: int) -> LambdaContext:
    context = LambdaContext(function_name, memory_size=1024, max_runtime_ms=timeout_seconds * 1000)
    context.aws_request_id = uuid.uuid4().hex
    return context


def failed_message_ids(response: Any, batch: list[str]) -> set[str]:
    """The messages a partial batch response sends back to the queue, as Lambda reads it: none
    for a missing or empty list; all of them for an identifier that names no message of the batch."""
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if not failures:
        return set()
    named = [item.get("itemIdentifier") if isinstance(item, dict) else None for item in failures]
    valid = {identifier for identifier in named if isinstance(identifier, str) and identifier in batch}
    return valid if len(valid) == len(set(named)) else set(batch)


class SqsPoller(threading.Thread):
    """One queue, one handler; stops within `wait_seconds` (+ the window) of `stop()`."""

    def __init__(
        self,
        queue_url: str,
        handler: Handler,
        *,
        name: str,
        batch_size: int = 1,
        window_seconds: float = 0,
        wait_seconds: int = 1,
        timeout_seconds: int = 60,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.window_seconds = window_seconds
        self.wait_seconds = wait_seconds
        self.timeout_seconds = timeout_seconds
        self.invocations = 0
        self._stopping = threading.Event()
        sqs = aws.client("sqs")
        attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]
        self.queue_arn = attributes["QueueArn"]
        self.region = sqs.meta.region_name

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                log.exception("poller error", extra={"fields": {"queue": self.name}})
                self._stopping.wait(1)

    def _receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        reply = aws.client("sqs").receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(count, MAX_RECEIVE),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(reply.get("Messages", []))

    def gather(self) -> list[dict[str, Any]]:
        """One batch: the first message(s) by long poll, then more until the batch is full or
        the batching window, counted from the first message, has passed."""
        batch = self._receive(self.batch_size, self.wait_seconds)
        closes = time.monotonic() + self.window_seconds
        while batch and len(batch) < self.batch_size and (left := closes - time.monotonic()) > 0:
            batch += self._receive(self.batch_size - len(batch), min(math.ceil(left), 20))
        return batch

    def poll_once(self) -> int:
        """Receive one batch and hand it to the handler; returns how many messages came."""
        messages = self.gather()
        if not messages:
            return 0
        event = lambda_sqs_event(messages, self.queue_arn, self.region)
        self.invocations += 1
        try:
            response = self.handler(event, _context(self.name, self.timeout_seconds))
        except Exception:
            # As Lambda does: the batch stays on the queue and comes back after the
            # visibility timeout; after maxReceiveCount the redrive policy moves it.
            log.exception("handler failed; messages left for redelivery", extra={"fields": {"queue": self.name}})
            return len(messages)
        failed = failed_message_ids(response, [message["MessageId"] for message in messages])
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), MAX_RECEIVE):
            aws.client("sqs").delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
                    for i, message in enumerate(done[start : start + MAX_RECEIVE])
                ],
            )
        return len(messages)


def sqs_pollers(application: Any, queue_urls: dict[str, str]) -> list[SqsPoller]:
    """A poller for every `@app.on_sqs_message` handler of the app module, with its batch size
    and window: the settings `chalice package` writes into the event source mapping."""
    from chalice.app import SQSEventConfig

    return [
        SqsPoller(
            queue_urls[str(source.queue)],
            getattr(application, source.name),
            name=source.name,
            batch_size=source.batch_size,
            window_seconds=source.maximum_batching_window_in_seconds,
        )
        for source in application.app.event_sources
        if isinstance(source, SQSEventConfig)
    ]


class Scheduler(threading.Thread):
    """Calls a scheduled handler every `interval_seconds` with an EventBridge-shaped event."""

    def __init__(self, handler: Handler, *, name: str, interval_seconds: float) -> None:
        super().__init__(name=name, daemon=True)
        self.handler = handler
        self.interval_seconds = interval_seconds
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.wait(self.interval_seconds):
            event = {
                "version": "0",
                "id": uuid.uuid4().hex,
                "detail-type": "Scheduled Event",
                "source": "aws.events",
                "account": "123456789012",  # chalice's CloudWatchEvent requires account and region
                "region": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
                "time": clock.now_iso(),
                "resources": [],
                "detail": {},
            }
            try:
                self.handler(event, _context(self.name, 300))
            except Exception:
                log.exception("scheduled handler failed", extra={"fields": {"job": self.name}})
