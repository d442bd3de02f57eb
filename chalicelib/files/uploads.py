"""Files: presigned uploads, the File lifecycle, owners' views and the superuser's reprocess.

The browser sends the bytes straight to S3 with a presigned POST whose policy pins the
object key (always ours: `uploads/<user>/<file><ext>`, never the user's filename), the size
range and the Content-Type. S3 announces the object on SQS and `worker` counts its words.

Status: `pending_upload` → `processing` → `completed` | `failed` (a superuser may send a
failed file back to `processing`), and `deleted` by its owner from any status but
`processing`. Every move is a conditional write on the status and processing attempt the
mover read, so concurrent or repeated events (or a delete racing the worker) cannot both win.

Counted is stored: the presigned POST stays valid for minutes, so its owner could replace a
counted object. The bucket is versioned; the worker counts one version (the one its GET
returned), records its id on the File when it claims the file, and downloads are presigned
for that version. Any other POST only adds a stray version, which the worker deletes when
S3 announces it (a lifecycle rule expires any noncurrent version that escapes, see
`infra/resources.py`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib.core import activity, aws, clock, counters, db, errors, logs, pagination
from chalicelib.core.config import settings
from chalicelib.core.db import transact_write, transaction_lost_condition
from chalicelib.core.models import Activity, File, User, status_day
from chalicelib.core.validation import Fields
from chalicelib.files import quota, upload_events

if TYPE_CHECKING:  # types only: the worker must not import bcrypt and jwt (cold start)
    from chalicelib.accounts.accounts import Principal
    from chalicelib.files.wordcount import Kind


class FileStatus(StrEnum):
    PENDING_UPLOAD = "pending_upload"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    DELETED = "deleted"


UPLOAD_PREFIX = "uploads/"  # also the bucket notification's filter (infra/resources.py)
MAX_FILENAME_CHARS = 255
QUOTA_ATTEMPTS = 3  # a lost quota race re-reads the owner's usage at most this often
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MISSING_OBJECT_CODES = ("404", "NoSuchKey", "NoSuchVersion")

_KEY = re.compile(r"^uploads/(?P<user>[0-9a-f]{32})/(?P<file>[0-9a-f]{32})(?P<ext>\.[a-z]+)$")
_SEPARATORS = re.compile(r"[/\\]")
_NOT_ASCII_SAFE = re.compile(r"[^A-Za-z0-9 ._()-]+")

log = logs.get("uploads")


@dataclass(frozen=True)
class FileKind:
    kind: Kind  # what `wordcount.count_words` expects
    mime: str  # the only Content-Type the upload policy accepts


KINDS = {".txt": FileKind("txt", "text/plain"), ".docx": FileKind("docx", DOCX_MIME)}


def extension(name: str) -> str:
    """Lower-cased last suffix including the dot (`.txt`), or "" when there is none."""
    _, dot, suffix = name.rpartition(".")
    return f".{suffix.lower()}" if dot else ""


def display_filename(raw: str) -> str:
    """The user's filename made safe to show: last path part, no control or format
    characters (bidi overrides disguise extensions), at most 255 characters with the
    extension kept. It is never used as a storage key or path."""
    name = _SEPARATORS.split(unicodedata.normalize("NFC", raw))[-1]
    name = "".join(ch for ch in name if not unicodedata.category(ch).startswith("C"))
    name = " ".join(name.split())
    if len(name) > MAX_FILENAME_CHARS:
        ext = extension(name)
        name = name[: MAX_FILENAME_CHARS - len(ext)] + ext
    return name


def object_key(user_id: str, file_id: str, ext: str) -> str:
    return f"{UPLOAD_PREFIX}{user_id}/{file_id}{ext}"


def file_for_key(key: str) -> File | None:
    """The File an object key belongs to, or None for a key we never handed out."""
    match = _KEY.match(key)
    if not match:
        return None
    try:
        item = File.get(match["file"], consistent_read=True)
    except DoesNotExist:
        return None
    return item if item.object_key == key else None


def kind_of(item: File) -> FileKind:
    return KINDS[extension(item.object_key)]


# --- the lifecycle ---------------------------------------------------------------------


def transition(item: File, to_status: FileStatus, entry: Activity | None, **changes: Any) -> bool:
    """Move `item` from the status and attempt it was read with, with its activity entry,
    in one transaction; also sets `changes` (None removes an attribute). False when
    another writer moved the file first; `item` is updated in place on success."""
    now = clock.now_iso()
    fields: dict[str, Any] = {
        "status": to_status,
        "status_day": status_day(to_status, item.created_at),
        "updated_at": now,
        "attempt": None,
    }
    if to_status == FileStatus.FAILED:
        # Only a counted file binds its version: a corrected POST to a failed one stays,
        # for a superuser's reprocess to count (see "Counted is stored" above).
        fields["version_id"] = None
    fields.update(changes)
    actions = [
        getattr(File, name).remove() if value is None else getattr(File, name).set(value)
        for name, value in fields.items()
    ]
    same_attempt = File.attempt == item.attempt if item.attempt else File.attempt.does_not_exist()
    try:
        with transact_write() as transaction:
            transaction.update(item, actions=actions, condition=(File.status == item.status) & same_attempt)
            if entry is not None:
                transaction.save(entry)
            counters.add(transaction, _counts(item, to_status, fields.get("word_count")), day=item.day)
            if to_status == FileStatus.DELETED:
                quota.release(transaction, item)
            elif "size" in changes and changes["size"] != item.size:
                quota.resize(transaction, item, int(changes["size"]))
    except TransactWriteError as error:
        if transaction_lost_condition(error):
            return False
        raise
    for name, value in fields.items():
        setattr(item, name, value)
    return True


def _counts(item: File, to_status: str, word_count: int | None) -> dict[str, counters.Amount]:
    """Counter deltas of a move, committed with it: per-status files, and the words of
    completed files (added on completion, taken back if a completed file ever leaves)."""
    deltas = counters.moved("files", item.status, to_status)
    gained = word_count or 0 if to_status == FileStatus.COMPLETED else 0
    lost = int(item.word_count or 0) if item.status == FileStatus.COMPLETED else 0
    if words := gained - lost:
        deltas[counters.WORDS] = words
    return deltas


def file_entry(action: str, item: File, *, actor_id: str | None = None, **metadata: Any) -> Activity:
    return activity.entry(action, item.user_id, actor_id=actor_id, metadata={"file_id": item.id, **metadata})


# --- requesting an upload --------------------------------------------------------------


def _upload_fields(body: dict[str, Any]) -> tuple[str, int]:
    fields = Fields(body)
    raw_name = fields.string("filename", max_length=4 * MAX_FILENAME_CHARS)
    size = fields.integer("size", minimum=1)
    fields.string("content_type", required=False, max_length=255)  # advisory: the policy fixes the type
    filename = display_filename(raw_name) if raw_name is not None else None
    if raw_name is not None and not filename:
        fields.fail("filename", "The filename has no printable characters.")
    fields.done()
    assert filename and size is not None
    return filename, size


def request_upload(principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    """A File in `pending_upload` and the presigned POST that lets its owner send the bytes,
    within the owner's quota (`quota`: checked again in the transaction that records it)."""
    if not principal.user.has_paid:
        raise errors.PaymentRequired("Uploads open after a successful payment.")
    quota.limit_requests(principal.user_id)
    filename, size = _upload_fields(body)
    ext = extension(filename)
    if ext not in KINDS:
        raise errors.ValidationError(
            "Only .txt and .docx files can be uploaded.", code="unsupported_file_type", details={"allowed": list(KINDS)}
        )
    config = settings()
    if size > config.max_upload_bytes:
        raise errors.ValidationError(
            f"Files may be at most {config.max_upload_bytes} bytes.",
            code="file_too_large",
            details={"max_bytes": config.max_upload_bytes},
        )
    file_id, created_at = clock.new_id(), clock.now_iso()
    item = File(
        file_id,
        user_id=principal.user_id,
        filename=filename,
        size=size,
        content_type=KINDS[ext].mime,
        object_key=object_key(principal.user_id, file_id, ext),
        status=FileStatus.PENDING_UPLOAD,
        created_at=created_at,
        updated_at=created_at,
        day=clock.day_of(created_at),
        status_day=status_day(FileStatus.PENDING_UPLOAD, created_at),
        listed_user_id=principal.user_id,
    )
    _record_within_quota(item, principal.user)
    return {"file": file_view(item), "upload": _presigned_post(item)}


def _record_within_quota(item: File, owner: User) -> None:
    """Write the new file, its entry, counters and the owner's usage in one transaction whose
    quota condition parallel requests cannot pass together. A lost condition means other
    requests took the room first: the owner is read again and either refused with the limit
    it broke or (room given back meanwhile by a delete) tried again."""
    size = int(item.size)
    for _ in range(QUOTA_ATTEMPTS):
        quota.refuse_if_over(owner, size)
        try:
            with transact_write() as transaction:
                transaction.save(item, condition=File.id.does_not_exist())
                transaction.save(file_entry("file_upload_requested", item, filename=item.filename, size=size))
                counters.add(transaction, counters.moved("files", None, FileStatus.PENDING_UPLOAD), day=item.day)
                quota.reserve(transaction, owner, size)
            return
        except TransactWriteError as error:
            if not transaction_lost_condition(error):
                raise
        owner = User.get(owner.id, consistent_read=True)
    raise errors.Conflict("Your files changed while this upload was recorded; try again.", code="conflict")


def _presigned_post(item: File) -> dict[str, Any]:
    """S3 checks the signed policy: this exact key, 1..max bytes, this Content-Type, expiry."""
    config = settings()
    expires_at = clock.now() + timedelta(seconds=config.upload_url_seconds)
    post = aws.client("s3").generate_presigned_post(
        Bucket=config.upload_bucket,
        Key=item.object_key,  # an exact `key` condition: no `${filename}`, no prefix match
        Fields={"Content-Type": item.content_type},
        Conditions=[
            {"Content-Type": item.content_type},
            ["content-length-range", 1, config.max_upload_bytes],
        ],
        ExpiresIn=config.upload_url_seconds,
    )
    return {
        "url": post["url"],
        "fields": post["fields"],
        "expires_at": clock.iso(expires_at),
        "max_bytes": config.max_upload_bytes,
    }


# --- reading ---------------------------------------------------------------------------


def file_view(item: File) -> dict[str, Any]:
    return {
        "id": item.id,
        "filename": item.filename,
        "size": int(item.size),
        "status": item.status,
        "word_count": None if item.word_count is None else int(item.word_count),
        "error": item.error,
        "created_at": item.created_at,
        "updated_at": item.updated_at,
    }


def _get(file_id: str) -> File:
    return db.get_or_404(File, file_id, "No such file.")


def _owned(user_id: str, file_id: str) -> File:
    item = _get(file_id)
    if item.user_id != user_id or item.status == FileStatus.DELETED:
        raise errors.NotFound("No such file.")  # the same answer as for an unknown id
    return item


def get_for_user(user_id: str, file_id: str) -> dict[str, Any]:
    item = _owned(user_id, file_id)
    view = file_view(item)
    if _object_stored(item):
        view["download_url"] = download_url(item)
    return view


def list_for_user(user_id: str, limit: int, cursor: str | None) -> pagination.Page:
    """The owner's files but the deleted ones, from a sparse index (a delete removes the
    file's `listed_user_id`): a filter would read deleted records and answer short pages."""
    query = pagination.newest_first(File.listed_by_user.query, user_id)
    return pagination.query_page(f"files:user:{user_id}", cursor, limit, query)


def _object_stored(item: File) -> bool:
    """Processing and completed files have their object; a failed one may not (never
    uploaded, or deleted for breaking the size limit), so S3 is asked."""
    if item.status in (FileStatus.PROCESSING, FileStatus.COMPLETED):
        return True
    return item.status == FileStatus.FAILED and stored_size(item) is not None


def is_missing(error: Exception) -> bool:
    """True for S3's answer to a key or version that is not there."""
    response = getattr(error, "response", None) or {}
    return response.get("Error", {}).get("Code") in MISSING_OBJECT_CODES


def stored_size(item: File) -> int | None:
    """Bytes of the file's object in S3, None when there is none; AWS errors propagate."""
    from botocore.exceptions import ClientError

    try:
        head = aws.client("s3").head_object(Bucket=settings().upload_bucket, Key=item.object_key)
    except ClientError as error:
        if is_missing(error):
            return None
        raise
    return int(head["ContentLength"])


def _versions(key: str) -> list[str]:
    """Every version id (delete markers included) stored under exactly `key`."""
    pages = aws.client("s3").get_paginator("list_object_versions").paginate(Bucket=settings().upload_bucket, Prefix=key)
    return [
        version["VersionId"]
        for page in pages
        for version in page.get("Versions", []) + page.get("DeleteMarkers", [])
        if version["Key"] == key
    ]


def delete_versions(item: File, *, keep: str | None = None) -> int:
    """Delete every version of the file's object but `keep`; returns how many went.

    Deleting by version id removes it for good (a plain delete would only add a marker)."""
    s3, bucket = aws.client("s3"), settings().upload_bucket
    removed = [version for version in _versions(item.object_key) if version != keep]
    for version in removed:
        s3.delete_object(Bucket=bucket, Key=item.object_key, VersionId=version)
    return len(removed)


def content_disposition(filename: str) -> str:
    """`attachment` with the UTF-8 name (RFC 6266/5987) and a plain ASCII fallback."""
    ext = extension(filename)
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = " ".join(_NOT_ASCII_SAFE.sub("_", ascii_name).split()).strip("_")
    if not ascii_name or ascii_name == ext or ascii_name.startswith("."):
        ascii_name = f"download{ext}"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def download_url(item: File) -> str:
    """A short-lived GET, of the counted version once the file is completed."""
    config = settings()
    params = {
        "Bucket": config.upload_bucket,
        "Key": item.object_key,
        "ResponseContentDisposition": content_disposition(item.filename),
        "ResponseContentType": item.content_type,
    }
    if item.version_id:
        params["VersionId"] = item.version_id
    return aws.client("s3").generate_presigned_url("get_object", Params=params, ExpiresIn=config.download_url_seconds)


# --- the owner's delete ----------------------------------------------------------------


def delete_for_user(user_id: str, file_id: str) -> None:
    """The record stays (as `deleted`, for staff) and every version of its object goes.

    A file in `processing` answers 409: the worker's run owns it until its final write, and
    the move is conditional on the status read, so a delete racing the worker's claim
    either wins (the claim then fails) or answers 409. The object is deleted after the
    move: an upload announced later finds the file deleted and the worker deletes it."""
    item = _owned(user_id, file_id)
    entry = file_entry("file_deleted", item)
    if item.status == FileStatus.PROCESSING or not transition(item, FileStatus.DELETED, entry, listed_user_id=None):
        _owned(user_id, file_id)  # a concurrent delete that won: 404 like any deleted file
        raise errors.Conflict("The file is being processed; delete it once it is done.", code="file_busy")
    delete_versions(item)
    logs.event(log, "file deleted", file_id=item.id)


# --- superuser: reprocess --------------------------------------------------------------


def reprocess(file_id: str, *, actor_id: str) -> dict[str, Any]:
    """Send a failed file back to the worker: failed → processing with a fresh attempt id,
    then a queue message shaped like S3's event carrying that id as a ticket (the worker
    takes over a `processing` file only with the matching ticket or on redelivery).
    Writes `admin_file_reprocess` with the actor in the same transaction."""
    item = _get(file_id)
    if item.status != FileStatus.FAILED:
        raise errors.Conflict("Only a failed file can be reprocessed.", code="file_not_failed")
    previous_error = item.error
    ticket = clock.new_id()
    entry = file_entry("admin_file_reprocess", item, actor_id=actor_id, previous_error=previous_error)
    if not transition(item, FileStatus.PROCESSING, entry, attempt=ticket, error=None, word_count=None):
        raise errors.Conflict("The file changed meanwhile; reload it.", code="file_not_failed")
    try:
        upload_events.send_reprocess(item.object_key, ticket)
    except Exception:
        # Never leave a file in `processing` with no message that could finish it.
        reason = "Could not queue the file for reprocessing."
        transition(item, FileStatus.FAILED, file_entry("file_processing_failed", item, reason=reason), error=reason)
        raise
    logs.event(log, "file requeued", file_id=item.id, actor_id=actor_id)
    return file_view(item)
