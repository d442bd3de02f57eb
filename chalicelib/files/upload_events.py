"""The upload queue's message format, written and read here only.

S3 writes `ObjectCreated` notifications to the queue; a superuser's reprocess writes the same
shape plus a ticket (the processing attempt id it set), so the worker reads one format. The
writer (`send_reprocess`) and the reader (`parse`) live side by side so they cannot drift.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote_plus

from chalicelib.core import aws, clock, logs
from chalicelib.core.config import settings

REPROCESS_TICKET = "ReprocessAttempt"  # body key of a reprocess message
REPROCESS_EVENT = "ObjectCreated:Reprocess"

log = logs.get("upload_events")


@dataclass(frozen=True)
class Message:
    keys: list[str]
    receive_count: int
    ticket: str | None  # the attempt id a reprocess request wrote


def parse(record: dict[str, Any]) -> Message | None:
    """The object keys an SQS record announces; None for S3's test event and for junk."""
    try:
        body = json.loads(record["body"])
        if body.get("Event") == "s3:TestEvent":
            logs.event(log, "s3 test event skipped")
            return None
        bucket = settings().upload_bucket
        keys = [
            # AWS URL-encodes keys with `+` for spaces, moto also `/` as %2F: unquote_plus reads both.
            unquote_plus(event["s3"]["object"]["key"])
            for event in body["Records"]
            if event["eventName"].startswith("ObjectCreated:") and event["s3"]["bucket"]["name"] == bucket
        ]
        ticket = body.get(REPROCESS_TICKET)
        receive_count = int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
    except (KeyError, TypeError, AttributeError, ValueError):
        logs.event(log, "malformed message skipped", logging.WARNING, message_id=record.get("messageId"))
        return None
    return Message(keys, receive_count, ticket if isinstance(ticket, str) else None)


def reprocess_body(key: str, ticket: str) -> str:
    """An S3-shaped event for `key` carrying the reprocess ticket."""
    event = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventTime": clock.now_iso(),
        "eventName": REPROCESS_EVENT,
        "s3": {"bucket": {"name": settings().upload_bucket}, "object": {"key": quote(key, safe="/")}},
    }
    return json.dumps({"Records": [event], REPROCESS_TICKET: ticket})


def send_reprocess(key: str, ticket: str) -> None:
    sqs = aws.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=settings().upload_queue)["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody=reprocess_body(key, ticket))
