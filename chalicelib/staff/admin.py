"""The staff API: staff may look at everything, only a superuser may change anything.

Every list is a Query: a user's own partition (`by_user`), or a global feed partitioned by
day (`by_day`, `by_status_day`, `by_action_day`) walked newest first. Every action a
superuser takes is written to the activity log with the actor.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib import payments
from chalicelib.accounts import directory, mfa
from chalicelib.accounts.accounts import user_view
from chalicelib.core import activity, clock, counters, db, errors, pagination
from chalicelib.core.config import settings
from chalicelib.core.db import transact_write
from chalicelib.core.models import Activity, File, Payment, User
from chalicelib.core.validation import Fields, query_int
from chalicelib.files import uploads
from chalicelib.staff import export, stats

if TYPE_CHECKING:
    from chalicelib.accounts.accounts import Principal

PAYMENT_STATUSES = tuple(payments.Status)
FILE_STATUSES = tuple(uploads.FileStatus)  # `deleted` included: staff still see deleted records


def require_staff(principal: Principal) -> Principal:
    """Staff (or a superuser) whose session passed the second factor."""
    if not (principal.user.is_staff or principal.user.is_superuser):
        raise errors.Forbidden("Only staff may see this.")
    return mfa.require_second_factor(principal)


def require_superuser(principal: Principal) -> Principal:
    if not principal.user.is_superuser:
        raise errors.Forbidden("Only a superuser may do this.")
    return mfa.require_second_factor(principal)


# --- filters ---------------------------------------------------------------------------


def _choice(query: dict[str, str], name: str, allowed: tuple[str, ...] | frozenset[str]) -> str | None:
    value = query.get(name) or None
    if value is not None and value not in allowed:
        raise errors.ValidationError(
            f"Unknown {name} {value!r}; use one of: {', '.join(sorted(allowed))}.", code="invalid_filter"
        )
    return value


def _user_id(query: dict[str, str]) -> str | None:
    value = query.get("user_id") or None
    if value is not None and not clock.is_id(value):
        raise errors.ValidationError("user_id must be a user's 32-character id.", code="invalid_filter")
    return value


# --- lists -----------------------------------------------------------------------------


def list_users(caller: Principal, query: dict[str, str], limit: int, cursor: str | None) -> dict[str, Any]:
    """Every user newest first, or (with `q`) those whose username or email starts with it."""
    prefix = directory.parse_query(query.get("q"))
    if prefix:
        return directory.search(prefix, limit, cursor).render(user_view)
    page = pagination.day_feed("admin:users", cursor, limit, by_day=User.by_day, oldest=stats.feed_start)
    return page.render(user_view)


def get_user(caller: Principal, user_id: str) -> dict[str, Any]:
    return {"user": user_view(_user(user_id))}


def _records_page(
    model: type[Payment] | type[File],
    kind: str,
    *,
    status: str | None,
    user_id: str | None,
    limit: int,
    cursor: str | None,
) -> pagination.Page:
    """Payments and files share their index layout: one function lists either."""
    return pagination.filtered_feed(
        f"admin:{kind}:{status or '*'}:{user_id or '*'}",
        cursor,
        limit,
        owner_id=user_id,
        owner_query=model.by_user.query,
        attribute=model.status,
        value=status,
        by_day=model.by_day,
        by_value_day=model.by_status_day,
        oldest=stats.feed_start,
    )


def payment_admin_view(payment: Payment) -> dict[str, Any]:
    """The Payment plus what staff need: the owner, why it failed or expired, what it cost in taka."""
    return {
        **payments.payment_view(payment),
        "user_id": payment.user_id,
        "failure_reason": payment.failure_reason,
        "review_reason": payment.review_reason,
        "amount_bdt": payment.gateway_amount_bdt,
    }


def file_admin_view(item: File) -> dict[str, Any]:
    return {**uploads.file_view(item), "user_id": item.user_id}


def list_payments(caller: Principal, query: dict[str, str], limit: int, cursor: str | None) -> dict[str, Any]:
    status, user_id = _choice(query, "status", PAYMENT_STATUSES), _user_id(query)
    page = _records_page(Payment, "payments", status=status, user_id=user_id, limit=limit, cursor=cursor)
    return directory.with_names(page.render(payment_admin_view))


def list_files(caller: Principal, query: dict[str, str], limit: int, cursor: str | None) -> dict[str, Any]:
    status, user_id = _choice(query, "status", FILE_STATUSES), _user_id(query)
    page = _records_page(File, "files", status=status, user_id=user_id, limit=limit, cursor=cursor)
    return directory.with_names(page.render(file_admin_view))


def list_activity(caller: Principal, query: dict[str, str], limit: int, cursor: str | None) -> dict[str, Any]:
    action, user_id = _choice(query, "action", activity.ACTIONS), _user_id(query)
    page = activity.list_all(limit, cursor, action=action, user_id=user_id, oldest=stats.feed_start)
    return directory.with_names(page.render(activity.view))


def export_payments(caller: Principal, query: dict[str, str]) -> tuple[str, str]:
    """(CSV text, file name) of the payments created in the query's date range."""
    status = _choice(query, "status", PAYMENT_STATUSES)
    first, last = export.date_range(query)
    return export.transactions_csv(first, last, status), export.filename(first, last)


# --- statistics ------------------------------------------------------------------------


def stats_view() -> dict[str, Any]:
    """Counters kept as events happen: one batch read, never a scan."""
    currency = settings().payment_currency
    payment_keys = {status: counters.status_key("payments", status) for status in PAYMENT_STATUSES}
    file_keys = {status: counters.status_key("files", status) for status in FILE_STATUSES}
    revenue_key = f"revenue#{currency}"
    values = stats.values([counters.USERS, "words", revenue_key, *payment_keys.values(), *file_keys.values()])
    return {
        "users": int(values[counters.USERS]),
        "payments": {status: int(values[key]) for status, key in payment_keys.items()},
        "revenue": {currency: f"{values[revenue_key]:.2f}"},
        "files": {status: int(values[key]) for status, key in file_keys.items()},
        "words_counted": int(values["words"]),
    }


def daily_view(query: dict[str, str]) -> dict[str, Any]:
    """Per-day figures of the last `days` days (1-366, default 30), from per-day counters."""
    days = query_int(
        query.get("days"), name="days", minimum=1, maximum=stats.MAX_DAYS, default=30, code="validation_error"
    )
    return {"currency": settings().payment_currency, "days": stats.daily(days)}


# --- superuser actions -----------------------------------------------------------------


def reprocess_file(caller: Principal, file_id: str) -> dict[str, Any]:
    """Send a failed file back to the worker (the entry `admin_file_reprocess` names the actor)."""
    return uploads.reprocess(file_id, actor_id=caller.user_id)


def _payment_owner(transaction_id: str) -> str:
    return db.get_or_404(Payment, transaction_id, "No such transaction.").user_id


def verify_payment(caller: Principal, transaction_id: str) -> dict[str, Any]:
    """Ask the gateway now. The check is logged with the actor whatever its outcome: an
    answer (the status after it) or the gateway's failure (its error code)."""
    owner = _payment_owner(transaction_id)
    try:
        result = payments.verify_now(transaction_id, actor_id=caller.user_id)
    except (errors.GatewayError, errors.GatewayTimeout) as failure:
        _record_verify(caller, owner, transaction_id, outcome={"error": failure.code})
        raise
    _record_verify(caller, owner, transaction_id, outcome={"status": result["status"]})
    return result


def approve_payment(caller: Principal, transaction_id: str) -> dict[str, Any]:
    """A payment in review granted (`payment_approved` names the actor)."""
    from chalicelib.payments import review

    return payments.payment_view(review.approve(transaction_id, actor_id=caller.user_id))


def reject_payment(caller: Principal, transaction_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """A payment in review refused for good, with the superuser's optional note."""
    from chalicelib.payments import review

    fields = Fields(body)
    note = fields.string("note", required=False, max_length=review.MAX_NOTE_LENGTH)
    fields.done()
    return payments.payment_view(review.reject(transaction_id, actor_id=caller.user_id, note=note))


def _record_verify(caller: Principal, owner: str, transaction_id: str, *, outcome: dict[str, str]) -> None:
    metadata = {"transaction_id": transaction_id, **outcome}
    activity.record("admin_payment_verify", owner, actor_id=caller.user_id, metadata=metadata)


def set_staff(caller: Principal, user_id: str, body: dict[str, Any], *, base_url: str) -> User:
    """Grant or revoke staff. The flag, its entry and, for a new staff member without a second
    factor, the email asking them to turn one on commit together (one transaction).

    Refused: one's own flag (a superuser cannot lock themselves out by mistake; another
    superuser or `make user` can change it) and revoking a superuser's (always staff).
    """
    fields = Fields(body)
    requested = fields.boolean("is_staff")
    fields.done()
    is_staff = requested is True  # done() has refused a missing or non-boolean value
    user = _user(user_id)
    if user.id == caller.user_id:
        raise errors.ValidationError("You cannot change your own staff flag.", code="cannot_change_self")
    if user.is_superuser and not is_staff:
        raise errors.ValidationError("A superuser is always staff.", code="superuser_is_staff")
    entry = activity.entry(
        "admin_staff_changed",
        user.id,
        actor_id=caller.user_id,
        metadata={"is_staff": is_staff, "was_staff": user.is_staff},
    )
    with transact_write() as transaction:
        transaction.update(user, actions=[User.is_staff.set(is_staff)], condition=User.id.exists())
        transaction.save(entry, condition=Activity.sk.does_not_exist())
        if is_staff and not user.is_staff:
            mfa.ask_to_enrol(transaction, user, base_url=base_url)
    user.is_staff = is_staff
    return user


def _user(user_id: str) -> User:
    return db.get_or_404(User, user_id, "No such user.", consistent_read=True)
