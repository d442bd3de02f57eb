"""The append-only activity log: every feature writes here, nothing deletes an entry.

The one edit: an account's deletion takes personal values out of its entries' metadata
(`chalicelib.leaving.deletion`); the entries themselves stay.

`entry()` builds an entry without saving it, so money and file transitions can commit
their entry in the same transaction as the change it describes; `record()` saves one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from chalicelib.core import clock, errors, logs, pagination
from chalicelib.core.models import Activity

ANONYMOUS = "anonymous"

ACTIONS = frozenset(
    {
        "user_registered",
        "login",
        "login_failed",
        "logout",
        "password_changed",
        "password_reset",
        "mfa_enabled",
        "mfa_disabled",
        "passkey_added",
        "passkey_removed",
        "email_verified",
        "payment_initiated",
        "payment_success",
        "payment_failed",
        "payment_cancelled",
        "payment_expired",
        "payment_callback_rejected",
        "payment_review",
        "payment_approved",
        "payment_rejected",
        "file_upload_requested",
        "file_uploaded",
        "file_processed",
        "file_processing_failed",
        "file_deleted",
        "file_upload_expired",
        "admin_file_reprocess",
        "admin_payment_verify",
        "admin_staff_changed",
        "account_deleted",
    }
)

log = logs.get("activity")


def entry(
    action: str,
    user_id: str | None,
    *,
    actor_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Activity:
    """An unsaved entry; secrets are masked out of `metadata` whatever the caller passed."""
    if action not in ACTIONS:
        raise ValueError(f"unknown activity action {action!r}")
    created_at = clock.now_iso()
    entry_id = clock.new_id()
    day = clock.day_of(created_at)
    return Activity(
        user_id or ANONYMOUS,
        f"{created_at}#{entry_id}",
        id=entry_id,
        action=action,
        actor_id=actor_id or user_id,
        metadata=logs.redact(metadata or {}),
        created_at=created_at,
        day=day,
        action_day=f"{action}#{day}",
    )


def record(
    action: str,
    user_id: str | None,
    *,
    actor_id: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Activity:
    item = entry(action, user_id, actor_id=actor_id, metadata=metadata)
    # Entries are new by construction (fresh id); the condition makes overwrites impossible.
    item.save(condition=Activity.sk.does_not_exist())
    logs.event(log, "activity", action=action, user_id=item.user_id, actor_id=item.actor_id)
    return item


def view(item: Activity) -> dict[str, Any]:
    return {
        "id": item.id,
        "action": item.action,
        "user_id": None if item.user_id == ANONYMOUS else item.user_id,
        "actor_id": item.actor_id,
        "metadata": item.metadata or {},
        "created_at": item.created_at,
    }


def list_for_user(user_id: str, limit: int, cursor: str | None) -> pagination.Page:
    query = pagination.newest_first(Activity.query, user_id)
    return pagination.query_page(f"activity:user:{user_id}", cursor, limit, query)


def list_all(
    limit: int, cursor: str | None, *, action: str | None, user_id: str | None, oldest: Callable[[], date]
) -> pagination.Page:
    """The staff feed: one user's partition, or the day-sharded global/action indexes."""
    if action is not None and action not in ACTIONS:
        raise errors.ValidationError(f"Unknown action {action!r}.", code="invalid_filter")
    return pagination.filtered_feed(
        f"activity:all:{action or '*'}:{user_id or '*'}",
        cursor,
        limit,
        owner_id=user_id,
        owner_query=Activity.query,
        attribute=Activity.action,
        value=action,
        by_day=Activity.by_day,
        by_value_day=Activity.by_action_day,
        oldest=oldest,
    )
