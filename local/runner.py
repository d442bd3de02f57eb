"""Run the app's SQS, stream and schedule handlers locally the way Lambda would.

`chalice local` serves routes only. An `SqsPoller` plays Lambda's event source mapping with
the handler's own settings (`sqs_pollers` reads them from the Chalice app): long-poll, fill a
batch of up to `batch_size` messages for at most the batching window, one Lambda-shaped event
(distinct message ids, receipt handles, attributes such as `ApproximateReceiveCount`), then
as `ReportBatchItemFailures` does: delete every message but those the partial batch response
names; on an exception, or a response naming no message of the batch, delete none. What
stays comes back after the visibility timeout, and the redrive policy moves it after
maxReceiveCount, exactly as on AWS. A `StreamPoller` plays the DynamoDB stream mapping of an
`@app.on_dynamodb_record` handler (see its docstring). A `Scheduler` plays EventBridge for
`@app.schedule` handlers.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
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


class Checkpoints:
    """Where each shard of a stream was read to, as the mapping keeps it: in a JSON file when
    given one (written before the next batch is read, so a SIGKILL repeats at most one batch),
    else in memory."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self._positions: dict[str, str] = json.loads(path.read_text()) if path and path.exists() else {}

    def get(self, stream_arn: str, shard_id: str) -> str | None:
        return self._positions.get(f"{stream_arn} {shard_id}")

    def set(self, stream_arn: str, shard_id: str, sequence_number: str) -> None:
        self._positions[f"{stream_arn} {shard_id}"] = sequence_number
        if self.path is not None:
            written = self.path.with_suffix(".tmp")
            written.write_text(json.dumps(self._positions, indent=1, sort_keys=True))
            os.replace(written, self.path)


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    iterator: str | None = None
    finished: bool = False  # closed (split) and read to its end


class StreamPoller(threading.Thread):
    """One table's stream, one handler, as Lambda's DynamoDB event source mapping runs it.

    Every shard (a parent before its children) is read from its checkpoint, or from its start
    (`TRIM_HORIZON`), `poll_seconds` apart when idle: once a second, where Lambda polls four
    times (each idle poll costs the one machine's DynamoDB Local and this process about 0.02
    CPU-s a second at four; an email may wait up to a second longer), at once again while
    records keep coming. Up to `batch_size` records, gathered for at most the batching window, make one
    event of the records whose `eventName` passes the filter (the mapping's `FilterCriteria`);
    the checkpoint then moves past the batch. A failure, or a partial batch response naming a
    record, moves it only up to that record, and the shard is read again from there after
    `retry_seconds`, for as long as it fails (the template's MaximumRetryAttempts -1: a record
    waits until it succeeds or leaves the stream after 24 hours).
    """

    SHARDS_EVERY_SECONDS = 10  # how often new shards are looked for (DynamoDB splits them now and then)

    def __init__(
        self,
        stream_arn: str,
        handler: Handler,
        *,
        name: str,
        checkpoints: Checkpoints,
        batch_size: int = 100,
        window_seconds: float = 0,
        event_names: tuple[str, ...] = ("INSERT",),
        poll_seconds: float = 1,
        retry_seconds: float = 1,
        timeout_seconds: int = 60,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.stream_arn = stream_arn
        self.handler = handler
        self.checkpoints = checkpoints
        self.batch_size = batch_size
        self.window_seconds = window_seconds
        self.event_names = event_names
        self.poll_seconds = poll_seconds
        self.retry_seconds = retry_seconds
        self.timeout_seconds = timeout_seconds
        self.invocations = 0
        self._shards: dict[str, _Shard] = {}
        self._shards_listed_at = -math.inf
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                busy = self.poll_once()
            except Exception:
                log.exception("stream poller error", extra={"fields": {"stream": self.name}})
                busy = False
            self._stopping.wait(0 if busy else self.poll_seconds)

    def poll_once(self) -> bool:
        """One batch from every shard that has records; True when some shard had any."""
        if time.monotonic() - self._shards_listed_at > self.SHARDS_EVERY_SECONDS:
            self._list_shards()
        busy = False
        for shard in list(self._shards.values()):
            parent = self._shards.get(shard.parent_id or "")
            if shard.finished or (parent is not None and not parent.finished):
                continue
            busy |= self._poll_shard(shard)
        return busy

    def drain(self) -> None:
        """Poll until no shard has records left (tests: everything written so far is handled)."""
        self._shards_listed_at = -math.inf
        while self.poll_once():
            pass

    def _list_shards(self) -> None:
        streams = aws.client("dynamodbstreams")
        start: dict[str, str] = {}
        while True:
            description = streams.describe_stream(StreamArn=self.stream_arn, **start)["StreamDescription"]
            for found in description.get("Shards", []):
                self._shards.setdefault(found["ShardId"], _Shard(found["ShardId"], found.get("ParentShardId")))
            if not (last := description.get("LastEvaluatedShardId")):
                break
            start = {"ExclusiveStartShardId": last}
        self._shards_listed_at = time.monotonic()

    def _iterator(self, shard: _Shard) -> str:
        """After the checkpoint; from the oldest record kept when there is none, or when the
        checkpoint's record has left the stream (a stack started again a day later)."""
        streams = aws.client("dynamodbstreams")
        done = self.checkpoints.get(self.stream_arn, shard.shard_id)
        start = {"StreamArn": self.stream_arn, "ShardId": shard.shard_id}
        if done:
            try:
                after = streams.get_shard_iterator(
                    **start, ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=done
                )
                return str(after["ShardIterator"])
            except streams.exceptions.TrimmedDataAccessException:
                log.warning("checkpoint no longer in the stream; reading from its oldest record")
        return str(streams.get_shard_iterator(**start, ShardIteratorType="TRIM_HORIZON")["ShardIterator"])

    def _read(self, shard: _Shard, limit: int) -> list[dict[str, Any]]:
        streams = aws.client("dynamodbstreams")
        if shard.iterator is None:
            shard.iterator = self._iterator(shard)
        try:
            reply = streams.get_records(ShardIterator=shard.iterator, Limit=limit)
        except streams.exceptions.ExpiredIteratorException:  # they last 15 minutes
            shard.iterator = self._iterator(shard)
            reply = streams.get_records(ShardIterator=shard.iterator, Limit=limit)
        shard.iterator = reply.get("NextShardIterator")
        records = list(reply.get("Records", []))
        if shard.iterator is None and not records:
            shard.finished = True
        return records

    def _gather(self, shard: _Shard) -> list[dict[str, Any]]:
        records = self._read(shard, self.batch_size)
        closes = time.monotonic() + self.window_seconds
        while records and len(records) < self.batch_size and shard.iterator and time.monotonic() < closes:
            self._stopping.wait(min(self.poll_seconds, max(0.0, closes - time.monotonic())))
            records += self._read(shard, self.batch_size - len(records))
        return records

    def _poll_shard(self, shard: _Shard) -> bool:
        # From the checkpoint each time, not the last reply's iterator: moto replaces a table's
        # stream whenever it rolls a cancelled transaction back, stranding older iterators.
        shard.iterator = None
        records = self._gather(shard)
        if not records:
            return False
        chosen = [{**record, "eventSourceARN": self.stream_arn} for record in records]
        chosen = [record for record in chosen if record.get("eventName") in self.event_names]
        failed_at = self._invoke(chosen) if chosen else None
        numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
        done = numbers if failed_at is None else numbers[: numbers.index(failed_at)]
        if done:
            self.checkpoints.set(self.stream_arn, shard.shard_id, done[-1])
        if failed_at is not None:  # read again from the checkpoint, the failed record first
            self._stopping.wait(self.retry_seconds)
        return True

    def _invoke(self, records: list[dict[str, Any]]) -> str | None:
        """The handler on one batch; the sequence number to retry from, or None when all succeeded."""
        numbers = [record["dynamodb"]["SequenceNumber"] for record in records]
        self.invocations += 1
        try:
            response = self.handler({"Records": records}, _context(self.name, self.timeout_seconds))
        except Exception:
            log.exception("handler failed; the batch is retried", extra={"fields": {"stream": self.name}})
            return numbers[0]
        failures = response.get("batchItemFailures") if isinstance(response, dict) else None
        if not failures:
            return None
        named = [item.get("itemIdentifier") if isinstance(item, dict) else None for item in failures]
        if all(identifier in numbers for identifier in named):  # the lowest one, as Lambda reads it
            return min(named, key=numbers.index)
        return numbers[0]  # an identifier that names no record of the batch: all of it again


def stream_pollers(application: Any, stream_arns: dict[str, str], checkpoints: Checkpoints) -> list[StreamPoller]:
    """A poller for every `@app.on_dynamodb_record` handler, on the stream of the table its
    `stream_arn` names (`stream_arns`: table name to its latest stream), with its batch settings."""
    from chalice.app import DynamoDBEventConfig

    return [
        StreamPoller(
            stream_arns[source.stream_arn.split(":table/", 1)[1].split("/", 1)[0]],
            getattr(application, source.name),
            name=source.name,
            checkpoints=checkpoints,
            batch_size=source.batch_size,
            window_seconds=source.maximum_batching_window_in_seconds,
        )
        for source in application.app.event_sources
        if isinstance(source, DynamoDBEventConfig)
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
