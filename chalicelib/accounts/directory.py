"""Who is who, for staff: names for the ids in a list page, and finding users by prefix.

Both are Queries or batch reads on keys: no Scan. Search walks two sparse indexes
(`User.by_username`, then `User.by_email`) whose partition is the first character of the
case-folded value, so any prefix, even one character, is one `begins_with` Query. The two
result sets are merged by order (usernames first, then emails) and de-duplicated by rule: an
email match whose username also matches was already listed. That needs no state beyond one
signed cursor `{phase, last key}`, so pages never repeat or skip a user.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from chalicelib.core import errors, pagination
from chalicelib.core.models import User

MAX_QUERY = 254  # the longest email we accept; a longer prefix matches nothing by definition
USERNAME, EMAIL = "u", "e"


def usernames(ids: Iterable[str | None]) -> dict[str, str]:
    """`{id: username}` for the distinct ids given, in one BatchGetItem per 100 ids."""
    distinct = sorted({i for i in ids if i})
    if not distinct:
        return {}
    return {user.id: user.username for user in User.batch_get(distinct, attributes_to_get=["id", "username"])}


def with_names(page: dict[str, Any]) -> dict[str, Any]:
    """A rendered list page whose items carry `username` (and `actor_username`) beside the ids.

    A user id that names no account (never, unless a record outlived its user) maps to None.
    """
    items = page["items"]
    names = usernames([i.get("user_id") for i in items] + [i.get("actor_id") for i in items])
    for item in items:
        item["username"] = names.get(item.get("user_id") or "")
        if "actor_id" in item:
            item["actor_username"] = names.get(item["actor_id"] or "")
    return page


def parse_query(raw: str | None) -> str | None:
    """The case-folded search prefix, or None for "no search" (blank)."""
    prefix = (raw or "").strip().lower()
    if len(prefix) > MAX_QUERY:
        raise errors.ValidationError(f"q is at most {MAX_QUERY} characters.", code="invalid_filter")
    return prefix or None


def _phase_query(phase: str, prefix: str) -> Any:
    index, key = (User.by_username, User.username_key) if phase == USERNAME else (User.by_email, User.email_key)

    def run(lek: dict[str, Any] | None, page_size: int) -> Any:
        return index.query(prefix[:1], key.startswith(prefix), limit=page_size, last_evaluated_key=lek)

    return run


def search(prefix: str, limit: int, cursor: str | None) -> pagination.Page:
    """Users whose username or email starts with `prefix`, usernames' matches first (A→Z)."""
    scope = f"admin:users:q:{prefix}"
    state = pagination.decode_cursor(scope, cursor) or {"p": USERNAME}
    phase, lek = state["p"], state.get("k")
    items: list[User] = []
    while True:
        results = _phase_query(phase, prefix)(lek, limit - len(items))
        for user in results:
            if phase == EMAIL and user.username.lower().startswith(prefix):
                continue  # listed in the username phase already
            items.append(user)
        lek = results.last_evaluated_key
        if lek is None and phase == USERNAME:
            phase = EMAIL
        elif lek is None:
            return pagination.Page(items, None)
        if len(items) >= limit:
            return pagination.Page(items, pagination.encode_cursor(scope, {"p": phase, "k": lek}))
