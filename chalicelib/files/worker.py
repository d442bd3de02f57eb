"""The upload worker: S3 `ObjectCreated` events, through SQS, become word counts.

Delivery is at least once, duplicated (moto sends two events for a multipart upload, SQS
redelivers) and unordered, so every step is a conditional write on what the run read:
- the first event of an upload claims the file: pending_upload → processing, with a fresh
  attempt id, the version it is about to count and the `file_uploaded` entry; later events
  see `processing` or a final status and are consumed without effect on the record;
- a message that comes back (ApproximateReceiveCount > 1: the run before crashed or timed
  out) takes over a `processing` file by replacing its attempt id (conditional on the one it
  read); so does a superuser's reprocess message, whose ticket is the attempt id it wrote;
- the final write (completed | failed, with its activity entry) is conditional on the run's
  own attempt id: a superseded run changes nothing, and nothing is counted twice;
- after the queue's maxReceiveCount the message lands on the DLQ, whose handler marks the
  file failed: no file stays in `processing`.
Counted is stored: the run opens its one GET *before* the claim, so the claim records the
version being counted (a takeover after a crash reads that recorded version again). Every
later POST adds a version whose own event arrives after it exists and finds the recorded
one: that event (not the counting run) deletes every other version. So a file costs four
round trips (read, GET, claim, final write) and a stray pays for its own removal. A failed
file keeps no version: a corrected POST stays, for a superuser's reprocess to count.
Problems with the upload itself (missing, empty, oversize, not what its extension says,
damaged) end `failed` on the first receive and consume the message; AWS errors and our own
bugs propagate so that SQS retries and the DLQ collects what keeps failing.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from chalicelib.core import aws, clock, logs, metrics
from chalicelib.core.config import settings
from chalicelib.core.models import Activity, File
from chalicelib.files import upload_events, uploads
from chalicelib.files.upload_events import Message
from chalicelib.files.uploads import FileStatus

if TYPE_CHECKING:
    from botocore.response import StreamingBody

    from chalicelib.files.wordcount import Kind

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


def _announced(records: list[dict[str, Any]]) -> Iterator[tuple[str, Message]]:
    for record in records:
        message = upload_events.parse(record)
        if message:
            yield from ((key, message) for key in message.keys)


def handle_records(records: list[dict[str, Any]]) -> None:
    """The upload queue's records (the app hands them over one at a time, `chalicelib/core/batches.py`;
    every record is safe to repeat)."""
    for key, message in _announced(records):
        process_object(key, message)


def process_object(key: str, message: Message) -> None:
    started = time.perf_counter()
    try:
        _process(key, message)
    finally:
        metrics.timing("WorkerDuration", (time.perf_counter() - started) * 1000)


def _process(key: str, message: Message) -> None:
    item = uploads.file_for_key(key)
    if item is None:
        logs.event(log, "object of no known file skipped", logging.WARNING, key=key[:300])
        return
    if not _may_claim(item, message):
        removed = _delete_strays(item)
        logs.event(log, "event for a file already handled", file_id=item.id, status=item.status, strays_deleted=removed)
        return
    with _opened(item) as stored:
        if not _claim(item, stored.version if stored else None):
            winner = uploads.file_for_key(key)  # another run or the owner's delete came first
            removed = _delete_strays(winner) if winner else 0
            logs.event(log, "claim lost to another writer", file_id=item.id, strays_deleted=removed)
            return
        try:
            size, words = _inspect(item, stored)
        except Rejected as problem:
            entry = uploads.file_entry("file_processing_failed", item, reason=problem.reason)
            _finish(item, FileStatus.FAILED, entry, error=problem.reason)
            return
    entry = uploads.file_entry("file_processed", item, word_count=words, size=size)
    # The final transition also counts the file's words (uploads.transition).
    _finish(item, FileStatus.COMPLETED, entry, word_count=words, size=size)


def _delete_strays(item: File) -> int:
    """Versions that are not the file's: all once deleted, else all but the recorded one. A
    file without a recorded version (waiting, failed, or claimed before versioning) keeps
    all: none is known stray."""
    if item.status == FileStatus.DELETED:
        return uploads.delete_versions(item)
    return uploads.delete_versions(item, keep=item.version_id) if item.version_id else 0


def _may_claim(item: File, message: Message) -> bool:
    """A file waiting for its upload, or a `processing` one this message may take over: a
    retry after a crash or timeout, or the superuser's reprocess request."""
    if item.status == FileStatus.PENDING_UPLOAD:
        return True
    return item.status == FileStatus.PROCESSING and (
        message.receive_count > 1 or (message.ticket is not None and message.ticket == item.attempt)
    )


def _claim(item: File, version: str | None) -> bool:
    """Make this run the file's owner (a new attempt id) and record the version it counts;
    False when another writer moved the file first."""
    entry = uploads.file_entry("file_uploaded", item) if item.status == FileStatus.PENDING_UPLOAD else None
    recorded = {"version_id": version} if version else {}
    return uploads.transition(item, FileStatus.PROCESSING, entry, attempt=clock.new_id(), **recorded)


@dataclass(frozen=True)
class Stored:
    """The GET of the object a run counts: its streaming body, length and version."""

    body: StreamingBody
    length: int
    version: str | None


@contextmanager
def _opened(item: File) -> Iterator[Stored | None]:
    """One GET of the file's object: the recorded version when there is one (a takeover
    counts what was claimed), else the current one. None when it is missing.
    The body is closed on the way out, read or not (a lost claim never reads it)."""
    from botocore.exceptions import ClientError

    version = {"VersionId": item.version_id} if item.version_id else {}
    try:
        reply = aws.client("s3").get_object(Bucket=settings().upload_bucket, Key=item.object_key, **version)
    except ClientError as error:
        if not uploads.is_missing(error):
            raise
        reply = None
    if reply is None:
        yield None
        return
    try:
        yield Stored(reply["Body"], int(reply["ContentLength"]), reply.get("VersionId"))
    finally:
        reply["Body"].close()


def _finish(item: File, status: FileStatus, entry: Activity, **changes: Any) -> None:
    if uploads.transition(item, status, entry, **changes):
        logs.event(log, "file processed", file_id=item.id, status=status, error=item.error)
        _count_outcome(item)
    else:
        logs.event(log, "superseded run discarded its result", file_id=item.id)


def _inspect(item: File, stored: Stored | None) -> tuple[int, int]:
    """(bytes, words) of the claimed object, streamed to a temporary file.

    moto enforces nothing of the POST policy (and a policy is no proof), so the size is
    checked here again, from the GET's length, before reading the body.
    """
    from chalicelib.files import wordcount

    if stored is None:
        raise Rejected("The uploaded file is missing.")
    limit = settings().max_upload_bytes
    if stored.length > limit:
        # S3 would have refused it under the signed policy: do not keep it either.
        uploads.delete_versions(item)
        raise Rejected(f"The file is larger than the {limit}-byte limit.")
    with tempfile.TemporaryFile() as spool:
        for chunk in stored.body.iter_chunks(wordcount.CHUNK_BYTES):
            spool.write(chunk)
        size = spool.tell()
        if size == 0:
            raise Rejected("The file is empty.")
        spool.seek(0)
        return size, _count_words(spool, uploads.kind_of(item).kind)


def _count_words(spool: IO[bytes], kind: Kind) -> int:
    from chalicelib.files import wordcount

    problem = _signature_problem(spool.read(SIGNATURE_BYTES), kind)
    spool.seek(0)
    if problem:
        raise Rejected(problem)
    try:
        return wordcount.count_words(spool, kind)
    except wordcount.Unreadable as error:
        raise Rejected(error.reason) from None


def _signature_problem(head: bytes, kind: Kind) -> str | None:
    """A cheap first look at the leading bytes; `wordcount` does the deep checks."""
    if kind == "docx":
        return None if head.startswith(ZIP_SIGNATURE) else "The file is not a Word document (.docx)."
    return "The file is not plain text." if head.startswith(BINARY_SIGNATURES) else None


def handle_dead_letters(records: list[dict[str, Any]]) -> None:
    """The DLQ's handler: a message that failed maxReceiveCount times fails its file, and
    its stray versions get a last chance to go. A stray left current would make the counted
    version noncurrent, which the bucket's lifecycle rule expires after a day."""
    for key, _ in _announced(records):
        item = uploads.file_for_key(key)
        if item is None:
            continue
        if item.status in (FileStatus.PENDING_UPLOAD, FileStatus.PROCESSING):
            entry = uploads.file_entry("file_processing_failed", item, reason=FAILED_REPEATEDLY)
            if uploads.transition(item, FileStatus.FAILED, entry, error=FAILED_REPEATEDLY):
                logs.event(log, "file failed after repeated attempts", logging.ERROR, file_id=item.id)
                _count_outcome(item)
        _delete_strays(item)


def _count_outcome(item: File) -> None:
    """The worker's metrics of a file that reached its final status."""
    if item.status == FileStatus.COMPLETED:
        metrics.count("FilesCompleted")
        metrics.count("WordsCounted", int(item.word_count or 0))
    else:
        metrics.count("FilesFailed")
