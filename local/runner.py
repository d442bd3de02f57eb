"""Run the app's SQS and schedule handlers locally the way Lambda would.

`chalice local` serves routes only. An `SqsPoller` plays Lambda's event source mapping:
long-poll, a Lambda-shaped event (distinct message ids, receipt handles, attributes such
as `ApproximateReceiveCount`), delete on success, leave the message on failure so the
visibility timeout and the redrive policy behave exactly as on AWS. A `Scheduler` plays
EventBridge for `@app.schedule` handlers.
"""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Callable
from typing import Any

from chalice.local import LambdaContext

from chalicelib.core import aws, clock, logs

log = logs.get("runner")
Handler = Callable[[dict[str, Any], Any], Any]


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


class SqsPoller(threading.Thread):
    """One queue, one handler; stops within `wait_seconds` of `stop()`."""

    def __init__(
        self,
        queue_url: str,
        handler: Handler,
        *,
        name: str,
        batch_size: int = 1,
        wait_seconds: int = 1,
        timeout_seconds: int = 60,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        self.timeout_seconds = timeout_seconds
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

    def poll_once(self) -> int:
        """Receive one batch and hand it to the handler; returns how many messages came."""
        sqs = aws.client("sqs")
        reply = sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch_size,
            WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = reply.get("Messages", [])
        if not messages:
            return 0
        event = lambda_sqs_event(messages, self.queue_arn, self.region)
        try:
            self.handler(event, _context(self.name, self.timeout_seconds))
        except Exception:
            # As Lambda does: the batch stays on the queue and comes back after the
            # visibility timeout; after maxReceiveCount the redrive policy moves it.
            log.exception("handler failed; messages left for redelivery", extra={"fields": {"queue": self.name}})
            return len(messages)
        sqs.delete_message_batch(
            QueueUrl=self.queue_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
        )
        return len(messages)


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
