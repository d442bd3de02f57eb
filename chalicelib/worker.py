"""The upload worker: S3 `ObjectCreated` events, through SQS, become word counts.

Delivery is at least once, duplicated (moto sends two events for a multipart upload, SQS
redelivers) and unordered, so every step is a conditional write on what the run read:
- the first event of an upload claims the file: pending_upload → processing, with a fresh
  attempt id and the `file_uploaded` entry; later events see `processing` or a final status
  and are consumed without effect;
- a message that comes back (ApproximateReceiveCount > 1: the run before crashed or timed
  out) takes over a `processing` file by replacing its attempt id (conditional on the one it
  read); so does a superuser's reprocess message, whose ticket is the attempt id it wrote;
- the final write (completed | failed, with its activity entry) is conditional on the run's
  own attempt id: a superseded run changes nothing, and nothing is counted twice;
- after the queue's maxReceiveCount the message lands on the DLQ, whose handler marks the
  file failed: no file stays in `processing`.
Problems with the upload itself (missing, empty, oversize, not what its extension says) end
`failed` and consume the message; AWS errors propagate so that SQS retries.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import unquote_plus

from chalicelib import aws, clock, logs, uploads
from chalicelib.config import settings
from chalicelib.models import Activity, File

CHUNK_BYTES = 1024 * 1024
SIGNATURE_BYTES = 8
ZIP_SIGNATURE = b"PK\x03\x04"
# Leading bytes of common binary formats that nobody means as a .txt file.
BINARY_SIGNATURES = (
    ZIP_SIGNATURE,
    b"%PDF-",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"\x7fELF",
    b"\x1f\x8b",
    b"\xd0\xcf\x11\xe0",
    b"Rar!",
    b"7z\xbc\xaf",
)
FAILED_REPEATEDLY = "Processing failed repeatedly."

log = logs.get("worker")


class Rejected(Exception):
    """A permanent problem with the uploaded object: the file ends failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
        ticket = body.get(uploads.REPROCESS_TICKET)
        receive_count = int(record.get("attributes", {}).get("ApproximateReceiveCount", 1))
    except (KeyError, TypeError, AttributeError, ValueError):
        logs.event(log, "malformed message skipped", logging.WARNING, message_id=record.get("messageId"))
        return None
    return Message(keys, receive_count, ticket if isinstance(ticket, str) else None)


def _announced(records: list[dict[str, Any]]) -> Iterator[tuple[str, Message]]:
    for record in records:
        message = parse(record)
        if message:
            yield from ((key, message) for key in message.keys)


def handle_records(records: list[dict[str, Any]]) -> None:
    """The upload queue's handler (batch size 1; every record is safe to repeat)."""
    for key, message in _announced(records):
        process_object(key, message)


def process_object(key: str, message: Message) -> None:
    item = uploads.file_for_key(key)
    if item is None:
        logs.event(log, "object of no known file skipped", logging.WARNING, key=key[:300])
        return
    if not _claim(item, message):
        logs.event(log, "event for a file already handled", file_id=item.id, status=item.status)
        return
    try:
        size, words = _inspect(item)
    except Rejected as problem:
        entry = uploads.file_entry("file_processing_failed", item, reason=problem.reason)
        _finish(item, uploads.FAILED, entry, error=problem.reason)
        return
    entry = uploads.file_entry("file_processed", item, word_count=words, size=size)
    _finish(item, uploads.COMPLETED, entry, word_count=words, size=size)  # counts its words too


def _claim(item: File, message: Message) -> bool:
    """Make this run the file's owner (a new attempt id); False when it is not ours to do."""
    if item.status == uploads.PENDING_UPLOAD:
        entry = uploads.file_entry("file_uploaded", item)
    elif item.status == uploads.PROCESSING and (
        message.receive_count > 1 or (message.ticket is not None and message.ticket == item.attempt)
    ):
        entry = None  # a retry after a crash or timeout, or a reprocess request: take over
    else:
        return False
    return uploads.transition(item, uploads.PROCESSING, entry, attempt=clock.new_id())


def _finish(item: File, status: str, entry: Activity, **changes: Any) -> bool:
    done = uploads.transition(item, status, entry, **changes)
    if done:
        logs.event(log, "file processed", file_id=item.id, status=status, error=item.error)
    else:
        logs.event(log, "superseded run discarded its result", file_id=item.id)
    return done


def _inspect(item: File) -> tuple[int, int]:
    """(bytes, words) of the file's object, streamed to a temporary file in chunks.

    moto enforces nothing of the POST policy (and a policy is no proof), so the size is
    checked here again, before and while downloading.
    """
    limit = settings().max_upload_bytes
    stored = uploads.stored_size(item)
    if stored is None:
        raise Rejected("The uploaded file is missing.")
    if stored > limit:
        raise _too_large(item, limit)
    with tempfile.TemporaryFile() as spool:
        size = _download(item, spool, limit)
        if size == 0:
            raise Rejected("The file is empty.")
        spool.seek(0)
        return size, _count_words(spool, uploads.kind_of(item).kind)


def _too_large(item: File, limit: int) -> Rejected:
    # S3 would have refused it under the signed policy: do not keep it either.
    aws.client("s3").delete_object(Bucket=settings().upload_bucket, Key=item.object_key)
    return Rejected(f"The file is larger than the {limit}-byte limit.")


def _download(item: File, spool: IO[bytes], limit: int) -> int:
    reply = aws.client("s3").get_object(Bucket=settings().upload_bucket, Key=item.object_key)
    body = reply["Body"]
    size = 0
    try:
        for chunk in body.iter_chunks(CHUNK_BYTES):
            size += len(chunk)
            if size > limit:  # replaced by a bigger object since the HEAD
                raise _too_large(item, limit)
            spool.write(chunk)
    finally:
        body.close()
    return size


def _count_words(spool: IO[bytes], kind: str) -> int:
    from chalicelib import wordcount

    problem = _signature_problem(spool.read(SIGNATURE_BYTES), kind)
    spool.seek(0)
    if problem:
        raise Rejected(problem)
    try:
        return wordcount.count_words(spool, kind)
    except wordcount.Unreadable as error:
        raise Rejected(error.reason) from None


def _signature_problem(head: bytes, kind: str) -> str | None:
    """A cheap first look at the leading bytes; `wordcount` does the deep checks."""
    if kind == "docx":
        return None if head.startswith(ZIP_SIGNATURE) else "The file is not a Word document (.docx)."
    return "The file is not plain text." if head.startswith(BINARY_SIGNATURES) else None


def handle_dead_letters(records: list[dict[str, Any]]) -> None:
    """The DLQ's handler: a message that failed maxReceiveCount times fails its file."""
    for key, _ in _announced(records):
        item = uploads.file_for_key(key)
        if item is None or item.status not in (uploads.PENDING_UPLOAD, uploads.PROCESSING):
            continue
        entry = uploads.file_entry("file_processing_failed", item, reason=FAILED_REPEATEDLY)
        if uploads.transition(item, uploads.FAILED, entry, error=FAILED_REPEATEDLY):
            logs.event(log, "file failed after repeated attempts", logging.ERROR, file_id=item.id)
