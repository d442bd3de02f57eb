"""Verified email: the links registration and resend send, and the transaction that makes an
account the owner of its address.

An address nobody has verified blocks nobody. Registration puts an unverified address into one
`email-pending#<addr>` item listing its holders (at most `accounts.PENDING_CAP`); only a
verified address has the `email#<addr>` claim that logins by email and uniqueness read.

Verifying is consistent reads (the token's account, then the address's two claim items), then
ONE transaction: the `email#` claim put (unless nobody has it), the account marked verified
(its token spent) on condition its token and email are unchanged, every other holder's email
set to null on condition it still is that address, the pending item deleted on condition its
holders are the ones read, and the activity entry. A refused condition means the world moved
between read and write: the whole step runs again (bounded), and the re-read decides. Of two
accounts verifying one address in parallel, one commits; the other's re-read finds its email
gone (or the claim another's) and answers 409 email_taken.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError

from chalicelib.accounts import links, ratelimit
from chalicelib.accounts.accounts import Principal, email_claim, pending_claim, username_claim
from chalicelib.core import activity, clock, errors
from chalicelib.core.db import CONDITION_FAILED, cancellation_codes, conditional_failed, transact_get, transact_write
from chalicelib.core.models import Claim, User
from chalicelib.core.validation import Fields
from chalicelib.mail import jobs
from chalicelib.mail.delivery import Outgoing
from chalicelib.mail.messages import Letter

TOKEN = links.LinkKind("verify_token_hash", "verify_expires_at", 7 * 24 * 3600)
RESENDS_PER_HOUR = 3
ATTEMPTS = 5  # read-decide-write rounds before a verification gives up with 409 conflict
TAKEN = "Another account verified this email address first."


def _taken() -> errors.ApiError:
    return errors.Conflict(TAKEN, code="email_taken")


def _not_verified() -> Any:
    return User.email_verified.does_not_exist() | (User.email_verified == False)  # noqa: E712 (an expression)


# --- sending the link ----------------------------------------------------------------------------


def resend(principal: Principal, *, base_url: str) -> None:
    """Queue a new link (superseding the last); at most RESENDS_PER_HOUR an hour, counted atomically."""
    user = principal.user
    if user.email is None:
        raise errors.Conflict("This account has no email address to verify.", code="no_email")
    if user.email_verified:
        raise errors.Conflict("This email address is verified already.", code="already_verified")
    if ratelimit.hit(f"verify-mail#{user.id}", 3600, window_is_open=False) > RESENDS_PER_HOUR:
        raise errors.TooManyRequests(
            "Too many verification emails; try again in an hour.",
            code="too_many_requests",
            details={"retry_after_seconds": 3600},
        )
    jobs.put("verify", user_id=user.id, base_url=base_url)


def verify_mails(job: dict[str, Any]) -> Iterator[Outgoing]:
    """The worker's half: one email per job (its dedupe key makes a duplicate delivery a no-op)."""
    user_id = str(job.get("user_id") or "")
    if user_id:
        yield Outgoing(f"{job['id']}#{user_id}", partial(_verify_letter, user_id, str(job.get("base_url") or "")))


def _verify_letter(user_id: str, base_url: str) -> Letter | None:
    """The token is stored by the run that sends (one update answering the account); None when
    the account is gone, verified or has no email any more."""
    token, actions = TOKEN.new(user_id)
    user = User(user_id)
    try:
        user.update(actions=actions, condition=User.id.exists() & User.email.exists() & _not_verified())
    except UpdateError as error:
        if conditional_failed(error):
            return None
        raise
    return Letter(
        str(user.email),
        "verify",
        user.language or "en",
        {"username": user.username, "link": f"{base_url}/dashboard/?verify={token}"},
    )


# --- following the link --------------------------------------------------------------------------


def verify(body: dict[str, Any]) -> User:
    """Spend the token: the account owns its address; 400 invalid_token, 409 email_taken."""
    fields = Fields(body)
    token = fields.string("token", max_length=None)  # any unknown token: invalid_token
    fields.done()
    assert token is not None
    gone: set[str] = set()  # holders whose email was no longer the address (skipped from then on)
    for _ in range(ATTEMPTS):
        user = TOKEN.holder(token)
        if user.email is None:
            raise _taken()  # another account verified the address first and took it from this one
        address = user.email
        claimed, pending = _address_items(address)
        if claimed is not None and claimed.owner_id != user.id:
            raise _taken()
        holders = sorted(pending.holders or set()) if pending else []
        others = [holder for holder in holders if holder not in gone and holder != user.id]
        try:
            _commit(user, token, claimed is not None, holders, others)
        except TransactWriteError as error:
            if not cancellation_codes(error):
                raise
            lost = _lost_holders(error, others)
            if lost is None:
                raise _taken() from None  # the username check: someone's username is this address
            gone |= lost
            continue
        user.email_verified = True
        return user
    raise errors.Conflict("Others are changing this address right now; try again.", code="conflict")


def _address_items(address: str) -> tuple[Claim | None, Claim | None]:
    """The verified claim and the pending item of an address, one consistent round trip."""
    with transact_get() as transaction:
        futures = [transaction.get(Claim, email_claim(address)), transaction.get(Claim, pending_claim(address))]
    found: list[Claim | None] = []
    for future in futures:
        try:
            found.append(future.get())
        except DoesNotExist:
            found.append(None)
    return found[0], found[1]


def _commit(user: User, token: str, owned: bool, holders: list[str], others: list[str]) -> None:
    """The one transaction (operations in pynamodb's order: checks, deletes, puts, updates)."""
    address = str(user.email)
    released: list[Any] = [User.email.remove(), User.email_key.remove(), User.email_bucket.remove()]
    with transact_write() as transaction:
        # No login may name two accounts: the address must be nobody else's username.
        transaction.condition_check(
            Claim,
            username_claim(address),
            condition=Claim.key.does_not_exist() | (Claim.owner_id == user.id),
        )
        if owned:  # an account from before verification existed: its claim stays, only the flag moves
            transaction.condition_check(Claim, email_claim(address), condition=Claim.owner_id == user.id)
        if holders:
            unchanged = Claim.holders == set(holders)
            transaction.delete(Claim(pending_claim(address)), condition=unchanged)
        if not owned:
            claim = Claim(email_claim(address), owner_id=user.id, created_at=clock.now_iso())
            transaction.save(claim, condition=Claim.key.does_not_exist())
        transaction.save(activity.entry("email_verified", user.id, metadata={"others_released": len(others)}))
        transaction.update(
            User(user.id),
            actions=[User.email_verified.set(True), *TOKEN.spent()],
            condition=TOKEN.unchanged(token) & (User.email == address),
        )
        for other in others:
            transaction.update(User(other), actions=released, condition=User.email == address)


def _lost_holders(error: TransactWriteError, others: list[str]) -> set[str] | None:
    """Which other holders refused (their email moved), to skip next round; None when the
    address is someone's username (no retry helps). An empty set: re-read and decide again."""
    reasons = cancellation_codes(error)
    if reasons and reasons[0] == CONDITION_FAILED:
        return None
    tail = reasons[len(reasons) - len(others) :] if others else []
    return {other for other, reason in zip(others, tail, strict=False) if reason == CONDITION_FAILED}
