"""A leaving owner's files: every record moved to `deleted`, every stored version gone.

Used by the account's deletion (`chalicelib.leaving`). Each file moves as the owner's own
delete moves it (`uploads.transition`: the entry, the per-status counters and the quota it
held, in one conditional transaction), and its filename is replaced by the object's own name
(`<file id><ext>`): the record stays for staff, without what the person called it. The
objects go afterwards, by prefix: `ListObjectVersions` on `uploads/<user>/` (1,000 versions
a page) and one `DeleteObjects` per page with the version ids, which removes them for good
(a delete without a version id only adds a marker in a versioned bucket).

Every step skips what is already done, so a run cut short (a crash, a Lambda timeout) is
finished by running it again.
"""

from __future__ import annotations

from collections.abc import Collection

from pynamodb.exceptions import UpdateError

from chalicelib.core import aws, logs
from chalicelib.core.config import settings
from chalicelib.core.db import conditional_failed
from chalicelib.core.models import File
from chalicelib.files import uploads
from chalicelib.files.uploads import FileStatus

PAGE_SIZE = 100  # files read per Query page (one page in memory at a time)

log = logs.get("uploads")


def user_prefix(user_id: str) -> str:
    """Every object of one user sits below this prefix (`uploads.object_key`)."""
    return uploads.object_key(user_id, "", "")


def anonymous_filename(item: File) -> str:
    return f"{item.id}{uploads.extension(item.object_key)}"


def retire_files(user_id: str) -> tuple[int, list[File]]:
    """Move every file of the user but those in `processing` to `deleted` (filename made
    anonymous). Returns (files moved now, files still `processing`)."""
    moved, busy = 0, []
    for listed in File.by_user.query(user_id, page_size=PAGE_SIZE):
        item = listed
        while True:
            if item.status == FileStatus.PROCESSING:
                busy.append(item)
                break
            if item.status == FileStatus.DELETED:
                _anonymize_deleted(item)
                break
            entry = uploads.file_entry("file_deleted", item, reason="account_deleted")
            anonymous = anonymous_filename(item)
            if uploads.transition(item, FileStatus.DELETED, entry, listed_user_id=None, filename=anonymous):
                moved += 1
                break
            item = File.get(item.id, consistent_read=True)  # the index lagged, or the worker moved it
    return moved, busy


def _anonymize_deleted(item: File) -> None:
    """A file its owner deleted before: only its filename changes (once; a re-run skips it)."""
    name = anonymous_filename(item)
    if item.filename == name:
        return
    try:
        item.update(actions=[File.filename.set(name)], condition=File.status == FileStatus.DELETED)
    except UpdateError as error:
        if not conditional_failed(error):
            raise


def purge_objects(user_id: str, *, keep: Collection[str] = ()) -> int:
    """Delete every version (and delete marker) stored below the user's prefix but under the
    keys in `keep` (files still being counted). Returns how many versions went."""
    s3, bucket = aws.client("s3"), settings().upload_bucket
    removed = 0
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=user_prefix(user_id))
    for page in pages:
        batch = [
            {"Key": version["Key"], "VersionId": version["VersionId"]}
            for version in page.get("Versions", []) + page.get("DeleteMarkers", [])
            if version["Key"] not in keep
        ]
        if not batch:
            continue
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
        if answer.get("Errors"):
            codes = sorted({error.get("Code", "?") for error in answer["Errors"]})
            raise RuntimeError(f"S3 refused to delete {len(answer['Errors'])} object versions: {', '.join(codes)}")
        removed += len(batch)
    logs.event(log, "user objects purged", user_id=user_id, versions=removed)
    return removed
