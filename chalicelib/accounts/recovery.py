"""Password reset by email: ask for a link, follow it, choose a new password.

The request path of `forgot` reads nothing and writes nothing but one SQS message, for any
address: the answer, its time and its AWS calls cannot tell whether an account holds it.
The mail worker (`forgot_mails`) finds the accounts (a Query on the `by_email` index), counts
the account's reset emails (at most 3 an hour, atomically), creates the token and sends.

A token (`links`) is `<user id>.<256 random bits>`; the account stores only its sha256 and
expiry, so a new link replaces (supersedes) the last. `reset` spends it in the transaction that sets the
password and moves the token epoch (every session ends), conditional on the hash it read:
of parallel resets with one token exactly one wins.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.accounts import accounts, links, passwords, ratelimit
from chalicelib.core import clock
from chalicelib.core.models import User
from chalicelib.core.validation import Fields
from chalicelib.mail import jobs
from chalicelib.mail.delivery import Outgoing
from chalicelib.mail.messages import Letter

TOKEN = links.LinkKind("reset_token_hash", "reset_expires_at", 30 * 60)
MAILS_PER_HOUR = 3


def forgot(body: dict[str, Any], *, base_url: str) -> None:
    """Queue the job: one PutItem whatever the address (no account is looked up here)."""
    fields = Fields(body)
    email = fields.string("email", max_length=254)
    if email is not None and not accounts.EMAIL.match(email.strip()):
        fields.fail("email", "Enter a valid email address.")
    fields.done()
    assert email is not None
    jobs.put("forgot", email=email.strip().lower(), base_url=base_url)


def forgot_mails(job: dict[str, Any]) -> Iterator[Outgoing]:
    """The worker's half: one reset email per account holding the address."""
    email = str(job.get("email") or "").lower()
    if not email:
        return
    for user in User.by_email.query(email[:1], User.email_key == email):
        if user.email == email:
            yield Outgoing(f"{job['id']}#{user.id}", partial(_reset_letter, user, str(job.get("base_url") or "")))


def _reset_letter(user: User, base_url: str) -> Letter | None:
    """Counted first (parallel jobs cannot outrun the limit), then the token; None when over."""
    if ratelimit.hit(f"reset-mail#{user.id}", 3600, window_is_open=False) > MAILS_PER_HOUR:
        return None
    token, actions = TOKEN.new(user.id)
    User(user.id).update(actions=actions, condition=User.id.exists())
    return Letter(
        user.email,
        "reset",
        user.language or "en",
        {"username": user.username, "link": f"{base_url}/dashboard/?reset={token}"},
    )


def reset(body: dict[str, Any]) -> dict[str, Any]:
    """Spend the token: new password, every session ended, fresh tokens; 400 invalid_token."""
    fields = Fields(body)
    token = fields.string("token", max_length=None)  # any unknown token: invalid_token
    new = fields.string("new_password", max_length=1000)
    if new is not None and (reason := passwords.problem(new)):
        fields.fail("new_password", reason)
    fields.done()
    assert token is not None and new is not None
    user = TOKEN.holder(token)
    epoch = accounts.set_password(
        user,
        new,
        action="password_reset",
        actions=TOKEN.spent(),
        condition=TOKEN.unchanged(token),
        lost=links.invalid(),
        notify=True,
    )
    return accounts.signed_in(user, epoch)


def password_changed_mails(job: dict[str, Any]) -> Iterator[Outgoing]:
    yield Outgoing(str(job["id"]), partial(_changed_letter, str(job.get("user_id") or "")))


def _changed_letter(user_id: str) -> Letter | None:
    try:
        user = User.get(user_id)
    except DoesNotExist:
        return None
    return Letter(user.email, "changed", user.language or "en", {"username": user.username, "time": clock.now_iso()})
