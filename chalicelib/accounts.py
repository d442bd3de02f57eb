"""Accounts and authentication: register, login, refresh, logout, who is calling.

Uniqueness of username and email is enforced by writing claim items in the same
transaction as the user (no read-then-write race). Login spends the same bcrypt time
for unknown users and wrong passwords, and locks an identifier after repeated failures.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError

from chalicelib import activity, clock, errors, passwords, ratelimit, stats, tokens
from chalicelib.config import settings
from chalicelib.db import CONDITION_FAILED, cancellation_codes, transact_get, transact_write
from chalicelib.models import Claim, RateLimit, RevokedToken, User, search_keys
from chalicelib.validation import Fields

USERNAME = re.compile(r"^[\w.@+-]{3,150}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
ROLES = ("user", "staff", "superuser")


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
        "is_staff": bool(user.is_staff),
        "is_superuser": bool(user.is_superuser),
        "has_paid": bool(user.has_paid),
        "created_at": user.created_at,
    }


def _registration_fields(body: dict[str, Any]) -> tuple[str, str, str]:
    fields = Fields(body)
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
    return username, email.strip().lower(), password


def register(body: dict[str, Any]) -> User:
    username, email, password = _registration_fields(body)
    return create_user(username, email, password)


def create_user(username: str, email: str, password: str, *, role: str = "user") -> User:
    """Create a user with its username and email claims in one transaction."""
    created_at = clock.now_iso()
    user = User(
        clock.new_id(),
        username=username,
        email=email,
        password_hash=passwords.hash_password(password),
        is_staff=role in ("staff", "superuser"),
        is_superuser=role == "superuser",
        has_paid=False,
        created_at=created_at,
        day=clock.day_of(created_at),
        **search_keys(username, email),
    )
    claims = [
        Claim(key, owner_id=user.id, created_at=created_at) for key in (username_claim(username), email_claim(email))
    ]
    try:
        with transact_write() as transaction:
            transaction.save(claims[0], condition=Claim.key.does_not_exist())
            transaction.save(claims[1], condition=Claim.key.does_not_exist())
            transaction.save(user, condition=User.id.does_not_exist())
            transaction.save(
                activity.entry("user_registered", user.id, metadata={"username": username, "role": role}),
            )
            stats.add(transaction, {stats.USERS: 1}, day=user.day)
    except TransactWriteError as error:
        codes = cancellation_codes(error)
        if codes[:1] == [CONDITION_FAILED]:
            raise errors.Conflict("That username is taken.", code="username_taken") from None
        if codes[1:2] == [CONDITION_FAILED]:
            raise errors.Conflict("An account with that email exists.", code="email_taken") from None
        raise
    return user


def _find_claim_owner(keys: list[str], failure_key: str) -> tuple[str | None, int]:
    """Owner id of the first claim that exists, and the live failure count: one round trip."""
    with transact_get() as transaction:
        futures = [transaction.get(Claim, key) for key in keys]
        failures = transaction.get(RateLimit, failure_key)
    owner = None
    for future in futures:
        try:
            owner = future.get().owner_id
            break
        except DoesNotExist:
            continue
    try:
        limit = failures.get()
        live = limit.expires_at > clock.now()
        count = int(limit.count) if live else 0
    except DoesNotExist:
        count = 0
    return owner, count


def login(body: dict[str, Any]) -> dict[str, Any]:
    fields = Fields(body)
    identifier = fields.string("username", max_length=254)
    password = fields.string("password", max_length=1000)
    fields.done()
    assert identifier is not None and password is not None
    config = settings()
    identifier = identifier.strip()
    failure_key = f"login#{identifier.casefold()}"
    keys = [username_claim(identifier)] + ([email_claim(identifier)] if "@" in identifier else [])
    owner_id, failures = _find_claim_owner(keys, failure_key)
    if failures >= config.login_max_failures:
        raise errors.TooManyRequests(
            "Too many failed logins; try again later.",
            details={"retry_after_seconds": config.login_lockout_seconds},
        )
    user = _get_user(owner_id) if owner_id else None
    if not passwords.verify(password, user.password_hash if user else None):
        ratelimit.hit(failure_key, config.login_lockout_seconds, window_is_open=failures > 0)
        activity.record(
            "login_failed",
            user.id if user else None,
            metadata={"identifier": identifier[:254], "reason": "bad_credentials"},
        )
        raise errors.Unauthorized("Wrong username or password.", code="invalid_credentials")
    assert user is not None
    if failures:
        ratelimit.clear(failure_key)
    activity.record("login", user.id)
    return tokens.issue_pair(user.id)


def _get_user(user_id: str) -> User | None:
    try:
        return User.get(user_id)
    except DoesNotExist:
        return None


def authenticate(token: str) -> Principal:
    """The caller of a request: valid access token, not revoked, user still exists."""
    claims = tokens.decode(token, tokens.ACCESS)
    return _principal(claims)


def _principal(claims: tokens.Claims) -> Principal:
    # One round trip for both reads: the revocation marker and the user.
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
    return Principal(user=user, claims=claims)


def refresh(body: dict[str, Any]) -> dict[str, Any]:
    """Rotate: the presented refresh token is revoked atomically, a new pair issued."""
    fields = Fields(body)
    token = fields.string("refresh", max_length=4096)
    fields.done()
    assert token is not None
    claims = tokens.decode(token, tokens.REFRESH)
    principal = _principal(claims)
    tokens.revoke_once(claims)
    return tokens.issue_pair(principal.user_id)


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
        owner_id = Claim.get(username_claim(username)).owner_id
    except DoesNotExist:
        email = email or f"{username.casefold()}@localhost.localdomain"
        return create_user(username, email.lower(), password, role=role), True
    user = User.get(owner_id)
    user.update(
        actions=[
            User.password_hash.set(passwords.hash_password(password)),
            User.is_staff.set(role in ("staff", "superuser")),
            User.is_superuser.set(role == "superuser"),
        ]
    )
    return user, False
