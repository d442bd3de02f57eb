"""Accounts and authentication: register, login, refresh, logout, who is calling.

Uniqueness of login identifiers (usernames and emails share one namespace) is enforced by
claim items written or checked in the same transaction as the user (no read-then-write race).
Login counts the attempt before bcrypt runs, spends the same bcrypt time for unknown users and
wrong passwords, and locks the account (or, for identifiers naming none, the client address)
after repeated failures. A token carries the account's epoch; a password change moves it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.condition import size
from pynamodb.expressions.update import Action

from chalicelib.accounts import passwords, ratelimit, tokens
from chalicelib.core import activity, clock, counters, errors, metrics
from chalicelib.core.config import settings
from chalicelib.core.db import (
    CONDITION_FAILED,
    cancellation_codes,
    conflicted,
    transact_get,
    transact_write,
)
from chalicelib.core.models import Claim, RevokedToken, User, search_keys
from chalicelib.core.validation import Fields
from chalicelib.mail import jobs
from chalicelib.mail.messages import LANGUAGES

USERNAME = re.compile(r"\A[A-Za-z0-9@.+_-]{3,150}\Z")  # ASCII, the whole string: no trailing newline
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROLES = ("user", "staff", "superuser")
TAKEN = {"username_taken": "That username is taken.", "email_taken": "An account with that email exists."}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user: User
    claims: tokens.Claims

    @property
    def user_id(self) -> str:
        return self.user.id


def username_claim(username: str) -> str:
    return f"username#{username.casefold()}"


def email_claim(email: str) -> str:
    return f"email#{email.lower()}"


def user_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "email_verified": bool(user.email_verified),
        "is_staff": bool(user.is_staff),
        "is_superuser": bool(user.is_superuser),
        "has_paid": bool(user.has_paid),
        "mfa_enabled": bool(user.mfa_enabled),
        "passkeys": passkey_count(user),
        "created_at": user.created_at,
    }


def passkey_count(user: User) -> int:
    return int(user.passkey_count or 0)


def has_second_factor(user: User) -> bool:
    """A confirmed TOTP factor or at least one passkey: what staff routes and passkey changes ask for."""
    return bool(user.mfa_enabled) or passkey_count(user) > 0


def _registration_fields(body: dict[str, Any]) -> tuple[str, str, str, str | None]:
    fields = Fields(body)
    language = fields.string("language", required=False, max_length=8)
    if language is not None and language not in LANGUAGES:
        fields.fail("language", f"One of {', '.join(LANGUAGES)}.")
    username = fields.string("username", max_length=150)
    email = fields.string("email", max_length=254)
    password = fields.string("password", max_length=1000)
    password2 = fields.string("password2", required=False, max_length=1000)
    if username is not None and not USERNAME.match(username):
        fields.fail("username", "3 to 150 characters: letters, digits and @.+-_ only.")
    if email is not None and not EMAIL.match(email):
        fields.fail("email", "Enter a valid email address.")
    if password is not None:
        if reason := passwords.problem(password):
            fields.fail("password", reason)
        elif password2 is not None and password2 != password:
            fields.fail("password2", "Passwords do not match.")
    fields.done()
    assert username and email and password
    return username, email.strip().lower(), password, language


def register(body: dict[str, Any], *, base_url: str) -> User:
    """Create the account; its verification email is queued in the same transaction."""
    username, email, password, language = _registration_fields(body)
    return create_user(username, email, password, language=language, verify_at=base_url)


def pending_claim(email: str) -> str:
    """The one item listing the accounts that hold `email` unverified (see `verification`)."""
    return f"email-pending#{email.lower()}"


PENDING_CAP = 20  # accounts that may hold one address unverified; one more answers 409 email_taken


def _no_holders() -> Any:
    return Claim.holders.does_not_exist()


def _identifier_claims(
    username: str, email: str, *, verified: bool
) -> tuple[list[tuple[str, str]], list[tuple[str, str, Any]], Any]:
    """What registration writes and checks: the claims it puts (key, code if refused), the
    condition checks (key, code, condition) and the condition on joining the pending holders."""
    taken, empty = Claim.key.does_not_exist(), _no_holders()
    own = [(username_claim(username), "username_taken")]
    if verified:
        own.append((email_claim(email), "email_taken"))
        wanted = [(pending_claim(email), "email_taken", empty)]
    else:
        wanted = [(email_claim(email), "email_taken", taken)]
    if "@" in username:
        wanted += [(email_claim(username), "username_taken", taken), (pending_claim(username), "username_taken", empty)]
    if "@" in email:
        wanted.append((username_claim(email), "email_taken", taken))
    written = {key for key, _ in own} | (set() if verified else {pending_claim(email)})
    checks: list[tuple[str, str, Any]] = []
    for key, code, condition in wanted:  # one operation per item: skip what is written or checked already
        if key not in written | {checked for checked, _, _ in checks}:
            checks.append((key, code, condition))
    # One's own email as username: the pending item is joined and checked at once, so it must be empty.
    holders_allowed = (
        empty if pending_claim(username) == pending_claim(email) else empty | (size(Claim.holders) < PENDING_CAP)
    )
    return own, checks, holders_allowed


def create_user(
    username: str,
    email: str,
    password: str,
    *,
    role: str = "user",
    language: str | None = None,
    verified: bool = False,
    verify_at: str | None = None,
) -> User:
    """Create a user with its identifier claims in one transaction (with the job of its
    verification email, whose link opens `verify_at`, when that is given).

    One namespace for login identifiers: besides claiming its own username, the transaction
    checks that no account has the username as its email (usernames may contain `@`; verified
    or not) and none has the email as its username, so no login can shadow another account's.
    An unverified email blocks nobody: the account joins the address's pending holders (at most
    PENDING_CAP), on condition nobody verified it. `verified` (operator accounts, `make user`)
    claims the address outright, on condition nobody holds it at all.
    """
    created_at = clock.now_iso()
    user = User(
        clock.new_id(),
        username=username,
        email=email,
        email_verified=verified or None,
        password_hash=passwords.hash_password(password),
        is_staff=role in ("staff", "superuser"),
        is_superuser=role == "superuser",
        has_paid=False,
        created_at=created_at,
        day=clock.day_of(created_at),
        language=language,
        **search_keys(username, email),
    )
    own, checks, holders_allowed = _identifier_claims(username, email, verified=verified)

    try:
        with transact_write() as transaction:
            for key, _, condition in checks:
                transaction.condition_check(Claim, key, condition=condition)
            for key, _ in own:
                transaction.save(
                    Claim(key, owner_id=user.id, created_at=created_at), condition=Claim.key.does_not_exist()
                )
            transaction.save(user, condition=User.id.does_not_exist())
            transaction.save(activity.entry("user_registered", user.id, metadata={"username": username, "role": role}))
            if verify_at is not None:
                jobs.add(transaction, "verify", user_id=user.id, base_url=verify_at)
            if not verified:
                transaction.update(
                    Claim(pending_claim(email)),
                    actions=[Claim.holders.add({user.id}), Claim.created_at.set(Claim.created_at | created_at)],
                    condition=holders_allowed,
                )
            counters.add(transaction, {counters.USERS: 1}, day=user.day)
    except TransactWriteError as error:
        # pynamodb sends condition checks first, then puts, then updates, each in the order added.
        codes: list[str | None] = [code for _, code, _ in checks] + [code for _, code in own] + [None, None]
        codes += [] if verify_at is None else [None]  # the verification email's job
        codes += [] if verified else ["email_taken"]  # the pending holders: nobody verified it, under the cap
        for refused, reason in zip(codes, cancellation_codes(error), strict=False):
            if refused and reason == CONDITION_FAILED:
                raise errors.Conflict(TAKEN[refused], code=refused) from None
        if conflicted(error):
            raise errors.Conflict("Another registration used these details; try again.", code="conflict") from None
        raise
    return user


def claim_owner(identifier: str) -> str | None:
    """The account a login identifier names (one namespace: at most one claim exists), one round trip."""
    keys = [username_claim(identifier)] + ([email_claim(identifier)] if "@" in identifier else [])
    with transact_get() as transaction:
        futures = [transaction.get(Claim, key) for key in keys]
    for future in futures:
        try:
            return future.get().owner_id
        except DoesNotExist:
            continue
    return None


def _count_attempt(key: str) -> None:
    """Count a password attempt *before* bcrypt runs: parallel guesses cannot outrun the limit."""
    config = settings()
    attempts = ratelimit.hit(key, config.login_lockout_seconds, window_is_open=False)
    if attempts == config.login_max_failures + 1:
        metrics.count("AccountLockouts")  # the first refused attempt of a window
    if attempts > config.login_max_failures:
        raise errors.TooManyRequests(
            "Too many failed logins; try again later.",
            details={"retry_after_seconds": config.login_lockout_seconds},
        )


def _attempts_key(user_id: str | None, client_ip: str) -> str:
    """Per account whatever identifier names it; per client address for identifiers naming none."""
    return f"login#user#{user_id}" if user_id else f"login#ip#{client_ip or 'unknown'}"


def account_attempts_key(user_id: str) -> str:
    return _attempts_key(user_id, "")


def login(body: dict[str, Any], *, client_ip: str) -> dict[str, Any]:
    fields = Fields(body)
    identifier = fields.string("username", max_length=254)
    password = fields.string("password", max_length=1000)
    fields.done()
    assert identifier is not None and password is not None
    identifier = identifier.strip()
    owner_id = claim_owner(identifier)
    attempts_key = _attempts_key(owner_id, client_ip)
    _count_attempt(attempts_key)
    user = _get_user(owner_id) if owner_id else None
    if not passwords.verify(password, user.password_hash if user else None):
        activity.record(
            "login_failed",
            user.id if user else None,
            metadata={"identifier": identifier[:254], "reason": "bad_credentials"},
        )
        metrics.count("LoginsFailed")
        raise errors.Unauthorized("Wrong username or password.", code="invalid_credentials")
    assert user is not None
    if user.mfa_enabled:  # the attempt stays counted until the second factor clears it (mfa.py)
        return tokens.issue_mfa_challenge(user.id, epoch_of(user))
    _record_login(user.id, attempts_key)
    return tokens.issue_pair(user.id, epoch_of(user))


def signed_in(user: User, epoch: int) -> dict[str, Any]:
    """Tokens after a proof of the password alone (a reset): the second factor still asked for."""
    if user.mfa_enabled:
        return tokens.issue_mfa_challenge(user.id, epoch)
    return tokens.issue_pair(user.id, epoch)


def _record_login(user_id: str, attempts_key: str) -> None:
    """The login's entry and the end of its attempt window (this attempt was counted as a
    failure in advance), one round trip. Should other attempts keep the window's item busy
    through every retry, the entry is saved alone and the window runs out by itself."""
    try:
        with transact_write() as transaction:
            ratelimit.clear_in(transaction, attempts_key)
            transaction.save(activity.entry("login", user_id))
    except TransactWriteError as error:
        if not conflicted(error):
            raise
        activity.record("login", user_id)


def epoch_of(user: User) -> int:
    """The account's token epoch as read (absent: 0); every token carries the one it was issued under."""
    return int(user.token_epoch or 0)


def _get_user(user_id: str) -> User | None:
    try:
        return User.get(user_id)
    except DoesNotExist:
        return None


def authenticate(token: str, token_type: str = tokens.ACCESS) -> Principal:
    """The caller of a request: valid access token, not revoked, user still exists."""
    claims = tokens.decode(token, token_type)
    return _principal(claims)


def _principal(claims: tokens.Claims) -> Principal:
    # One round trip for both reads: the revocation marker and the user (whose epoch ends sessions).
    with transact_get() as transaction:
        revoked = transaction.get(RevokedToken, claims.jti)
        user_future = transaction.get(User, claims.user_id)
    try:
        revoked.get()
        raise errors.Unauthorized("The token was revoked.", code="invalid_token")
    except DoesNotExist:
        pass
    try:
        user = user_future.get()
    except DoesNotExist:
        raise errors.Unauthorized("The account no longer exists.", code="invalid_token") from None
    if claims.epoch != epoch_of(user):
        raise errors.Unauthorized("The session ended: the password was changed.", code="invalid_token")
    return Principal(user=user, claims=claims)


def change_password(principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    """Set a new password and end every other session of the account; fresh tokens for this one."""
    fields = Fields(body)
    current = fields.string("current_password", max_length=1000)
    new = fields.string("new_password", max_length=1000)
    if new is not None and (reason := passwords.problem(new)):
        fields.fail("new_password", reason)
    fields.done()
    assert current is not None and new is not None
    user = principal.user
    ratelimit.clear(check_password(user, current, reason="wrong_current_password"))
    epoch = set_password(user, new, action="password_changed", notify=True)
    return tokens.issue_pair(user.id, epoch, mfa=principal.claims.mfa)


def check_password(user: User, password: str, *, reason: str) -> str:
    """The signed-in caller proves it again (a password change, turning the second factor off,
    an account deletion): counted like a login, so a stolen access token cannot brute-force the
    password either; 401 invalid_credentials. The attempts key, for the caller to clear once
    everything it asks is proved (a code too, for the second factor)."""
    attempts_key = account_attempts_key(user.id)
    _count_attempt(attempts_key)
    if not passwords.verify(password, user.password_hash):
        activity.record("login_failed", user.id, metadata={"reason": reason})
        raise errors.Unauthorized("The password is wrong.", code="invalid_credentials")
    return attempts_key


def same_epoch(user: User) -> Any:
    """The condition that the account's token epoch is still the one `user` was read with."""
    read = epoch_of(user)
    unchanged = User.token_epoch == read
    return unchanged | User.token_epoch.does_not_exist() if not read else unchanged


def ending_sessions(user: User) -> tuple[int, Action, Any]:
    """What a write adds to end every session of the account: the new epoch, the action that
    sets it, and the condition that nobody moved it since `user` was read."""
    moved = epoch_of(user) + 1
    return moved, User.token_epoch.set(moved), same_epoch(user)


def set_password(
    user: User,
    password: str,
    *,
    action: str,
    actions: list[Any] | None = None,
    condition: Any = None,
    lost: errors.ApiError | None = None,
    notify: bool = False,
) -> int:
    """New hash and a new token epoch (every token issued before answers 401), with its entry
    and, when `notify`, the job of the "your password was changed" email.

    `condition` joins the epoch's (a reset's token must still be the one read); when the
    transaction is refused, `lost` is raised (default: this session has ended)."""
    moved, move, unchanged = ending_sessions(user)
    updates = [User.password_hash.set(passwords.hash_password(password)), move]
    if condition is not None:
        unchanged = unchanged & condition

    try:
        with transact_write() as transaction:
            transaction.update(
                User(user.id), actions=[*updates, *(actions or [])], condition=User.id.exists() & unchanged
            )
            transaction.save(activity.entry(action, user.id))
            if notify:
                jobs.add(transaction, "password_changed", user_id=user.id)
    except TransactWriteError:
        # Another change moved the epoch (or met this one): this session has ended either way.
        raise lost or errors.Unauthorized(
            "The session ended: the password was changed.", code="invalid_token"
        ) from None
    return moved


def refresh(body: dict[str, Any]) -> dict[str, Any]:
    """Rotate: the presented refresh token is revoked atomically, a new pair issued."""
    fields = Fields(body)
    token = fields.string("refresh", max_length=4096)
    fields.done()
    assert token is not None
    claims = tokens.decode(token, tokens.REFRESH)
    principal = _principal(claims)
    tokens.revoke_once(claims)
    return tokens.issue_pair(principal.user_id, epoch_of(principal.user), mfa=claims.mfa, auth_time=claims.auth_time)


def logout(principal: Principal, body: dict[str, Any]) -> None:
    """Revoke this access token and, when given and the caller's own, the refresh token."""
    revocations = [tokens.revocation(principal.claims)]
    refresh_token = body.get("refresh")
    if isinstance(refresh_token, str) and refresh_token:
        try:
            refresh_claims = tokens.decode(refresh_token, tokens.REFRESH)
        except errors.Unauthorized:
            refresh_claims = None
        if refresh_claims and refresh_claims.user_id == principal.user_id:
            revocations.append(tokens.revocation(refresh_claims))
    with transact_write() as transaction:
        for item in revocations:
            transaction.save(item)
        transaction.save(activity.entry("logout", principal.user_id, metadata={"revoked": len(revocations)}))


def upsert_user(username: str, password: str, role: str, email: str | None = None) -> tuple[User, bool]:
    """Create the account or set its password and role (`make user`). True when created."""
    if role not in ROLES:
        raise errors.ValidationError(f"role must be one of {', '.join(ROLES)}.")
    if reason := passwords.problem(password):
        raise errors.ValidationError(reason)
    try:
        owner_id = str(Claim.get(username_claim(username)).owner_id)
    except DoesNotExist:
        email = email or f"{username.casefold()}@localhost.localdomain"
        return create_user(username, email.lower(), password, role=role, verified=True), True
    user = User.get(owner_id)
    roles = [User.is_staff.set(role in ("staff", "superuser")), User.is_superuser.set(role == "superuser")]
    set_password(user, password, action="password_reset", actions=roles)
    return User.get(owner_id), False
