"""The scheduled expiry of uploads that never arrived: no `pending_upload` record for ever.

A presigned POST lives `UPLOAD_URL_SECONDS` (5 minutes); a file still `pending_upload` an
hour later (`PENDING_UPLOAD_EXPIRE_SECONDS`) will never get its bytes, yet counts against
its owner's quota. Each run asks the `by_status_day` index for the days in which such files
can still sit (a Query per day, `LOOKBACK_DAYS` of them, so a job that was down for days
catches up), checks S3 once per file (bytes that did arrive are the worker's, whose event may
only be late) and moves the rest to `deleted` with their entry, counters and quota release in
one conditional transaction (`uploads.transition`), so a worker claiming the file at the same
moment or a second run cannot both win.
"""

from __future__ import annotations

from datetime import date, timedelta

from chalicelib.core import clock, logs, metrics
from chalicelib.core.config import settings
from chalicelib.core.models import File, status_day
from chalicelib.files.uploads import FileStatus, file_entry, stored_size, transition

LOOKBACK_DAYS = 14  # the job runs hourly: two weeks of outage still catch up
MAX_FILES_PER_RUN = 500  # bounded work per run; the next run takes the rest
NEVER_ARRIVED = "The upload never arrived."

log = logs.get("files")


def expire_stale_uploads(*, max_files: int = MAX_FILES_PER_RUN) -> dict[str, int]:
    """Delete the records of uploads older than the expiry age whose object is not in S3."""
    cutoff = clock.iso(clock.now() - timedelta(seconds=settings().pending_upload_expire_seconds))
    summary = {"expired": 0, "arrived": 0, "lost_race": 0}
    for item in _stale(cutoff, max_files):
        if stored_size(item) is not None:
            summary["arrived"] += 1  # the worker's, once S3's event reaches it
            continue
        entry = file_entry("file_upload_expired", item)
        moved = transition(item, FileStatus.DELETED, entry, listed_user_id=None, error=NEVER_ARRIVED)
        summary["expired" if moved else "lost_race"] += 1
    metrics.count("UploadsExpired", summary["expired"])
    logs.event(log, "stale uploads expired", **summary)
    return summary


def _stale(cutoff: str, limit: int) -> list[File]:
    """`pending_upload` files created before `cutoff`, oldest day first, at most `limit`."""
    last_day = date.fromisoformat(clock.day_of(cutoff))
    found: list[File] = []
    for back in range(LOOKBACK_DAYS, -1, -1):
        day = (last_day - timedelta(days=back)).isoformat()
        key = status_day(FileStatus.PENDING_UPLOAD, day)
        found.extend(File.by_status_day.query(key, File.created_at < cutoff, limit=limit - len(found)))
        if len(found) >= limit:
            break
    return found
