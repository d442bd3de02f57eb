"""The second factor (TOTP, RFC 6238): enrol, confirm, log in with a code, disable.

A setup stores a pending secret that does nothing until a code from it is confirmed; a new
setup replaces it. Confirming enables the factor, stores ten recovery codes as hashes, and
moves the token epoch: every other session (none of which proved the factor) ends, and the
confirming session gets fresh tokens marked `mfa: true`, since it has just proved it.

Log-in with a second factor is two steps. The password step answers an `mfa` token (its own
`typ`: never an access token) and leaves the password attempt counted. The code step counts
its attempt per `mfa` token *before* checking (after `MAX_CODE_ATTEMPTS` the token is dead,
however many requests run in parallel), then commits in one transaction, each part
conditional: the account's last accepted time step rises (a TOTP code is accepted once), or
one recovery code's hash leaves the set (once); the `mfa` token is revoked (one session per
token); the password attempt window is cleared; the `login` entry is written.

Staff routes ask `require_second_factor`: the session passed a second factor (this one, or a
passkey: `passkey_login`) and the account still has one (disabling the last one therefore
takes every staff session's access at once).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from functools import partial
from typing import Any

from pynamodb.exceptions import DoesNotExist, TransactWriteError, UpdateError
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from chalicelib.accounts import accounts, passkeys, ratelimit, recovery_codes, tokens, totp
from chalicelib.accounts.accounts import Principal
from chalicelib.core import activity, errors, metrics
from chalicelib.core.config import settings
from chalicelib.core.db import CONDITION_FAILED, cancellation_codes, conditional_failed, transact_write
from chalicelib.core.models import RevokedToken, User
from chalicelib.core.validation import Fields
from chalicelib.mail import jobs
from chalicelib.mail.delivery import Outgoing
from chalicelib.mail.messages import Letter

MAX_CODE_ATTEMPTS = 5  # per mfa token; the next attempt finds it dead
MAX_CODE_LENGTH = 64  # a TOTP code is 6 digits, a recovery code 19 characters with its dashes
QR_SCALE = 4


def _already_enabled() -> errors.ApiError:
    return errors.Conflict("Two-factor authentication is already on; turn it off first.", code="mfa_already_enabled")


def _invalid_code(status: type[errors.ApiError] = errors.Unauthorized) -> errors.ApiError:
    return status("That code is wrong, expired or already used.", code="invalid_code")


def _dead_token() -> errors.ApiError:
    message = "This sign-in has expired or had too many wrong codes; log in again."
    return errors.Unauthorized(message, code="invalid_token")


def _not_enabled() -> Any:
    return User.mfa_enabled.does_not_exist() | (User.mfa_enabled == False)  # noqa: E712 (a DynamoDB condition)


def qr_svg(uri: str) -> str:
    """The URI as a QR code, an `<svg>` element with its namespace and no inline style (the
    dashboard's CSP allows none), for the dashboard to insert as a node."""
    import segno  # only setup needs it

    buffer = io.BytesIO()
    segno.make(uri, error="m").save(
        buffer, kind="svg", scale=QR_SCALE, xmldecl=False, svgns=True, nl=False, title="QR code"
    )
    return buffer.getvalue().decode("utf-8")


# --- enrolment -------------------------------------------------------------------------


def setup(principal: Principal) -> dict[str, Any]:
    """A new pending secret (replacing an unconfirmed one), one conditional update."""
    user = principal.user
    if user.mfa_enabled:
        raise _already_enabled()
    passkeys.require_factor_if_staff(principal)  # staff with a passkey: not with the password alone
    secret = totp.new_secret()
    try:
        User(user.id).update(actions=[User.mfa_pending_secret.set(secret)], condition=User.id.exists() & _not_enabled())
    except UpdateError as error:
        if conditional_failed(error):
            raise _already_enabled() from None
        raise
    uri = totp.otpauth_uri(secret, user.username, settings().mfa_issuer)
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": qr_svg(uri)}


def _code(body: dict[str, Any], *more: str) -> tuple[str, ...]:
    fields = Fields(body)
    values = [fields.string(name, max_length=1000) for name in more]
    code = fields.string("code", max_length=MAX_CODE_LENGTH)
    fields.done()
    assert code is not None and all(value is not None for value in values)
    return (code.strip(), *[str(value) for value in values])


def confirm(principal: Principal, body: dict[str, Any]) -> dict[str, Any]:
    """Enable the factor with a code of the pending secret: the recovery codes (shown once)
    and fresh `mfa` tokens for this session; every other session ends (400 invalid_code)."""
    (code,) = _code(body)
    user = principal.user
    if user.mfa_enabled:
        raise _already_enabled()
    pending = user.mfa_pending_secret
    if pending is None or totp.matching_step(pending, code) is None:
        raise _invalid_code(errors.ValidationError)
    codes = recovery_codes.new_codes()
    epoch, end_other_sessions, unchanged_epoch = accounts.ending_sessions(user)
    actions: list[Action] = [
        User.mfa_enabled.set(True),
        User.mfa_secret.set(pending),
        User.mfa_pending_secret.remove(),
        # Enrolment is not a sign-in: the log-in step counts its own uses, so the code just
        # confirmed may still open one session (the password is asked again first).
        User.mfa_last_step.remove(),
        User.mfa_recovery_hashes.set({recovery_codes.digest(c) for c in codes}),
        end_other_sessions,
    ]
    condition = User.id.exists() & (User.mfa_pending_secret == pending) & _not_enabled() & unchanged_epoch
    try:
        with transact_write() as transaction:
            transaction.update(User(user.id), actions=actions, condition=condition)
            transaction.save(activity.entry("mfa_enabled", user.id))
    except TransactWriteError as error:
        if CONDITION_FAILED in cancellation_codes(error):  # a parallel confirm or setup won
            raise _invalid_code(errors.ValidationError) from None
        raise
    return {"recovery_codes": codes, **tokens.issue_pair(user.id, epoch, mfa=True)}


# --- proving it ------------------------------------------------------------------------


def _proof(user: User, code: str) -> tuple[list[Action], Any, str]:
    """What spends `code` (update actions, their condition) and its kind; else invalid_code.

    A TOTP code must be of a later step than the last one accepted; a recovery code's hash
    must still be in the set. Each condition makes the spending exactly-once."""
    secret = user.mfa_secret or ""
    step = totp.matching_step(secret, code) if secret else None
    last = int(user.mfa_last_step) if user.mfa_last_step is not None else -1
    same_secret = User.mfa_enabled == True  # noqa: E712 (a DynamoDB condition)
    same_secret &= User.mfa_secret == secret
    if step is not None and step > last:
        later = (User.mfa_last_step < step) | User.mfa_last_step.does_not_exist()
        return [User.mfa_last_step.set(step)], same_secret & later, "totp"
    hashed = recovery_codes.digest(code)
    if step is None and hashed in (user.mfa_recovery_hashes or set()):
        unused = User.mfa_recovery_hashes.contains(hashed)
        return [User.mfa_recovery_hashes.delete({hashed})], same_secret & unused, "recovery_code"
    raise _invalid_code()


def _wrong_code(user: User, reason: str) -> errors.ApiError:
    activity.record("login_failed", user.id, metadata={"reason": reason})
    metrics.count("SecondFactorsFailed")
    return _invalid_code()


def complete_login(body: dict[str, Any]) -> dict[str, Any]:
    """The code step of log-in: tokens marked `mfa: true`; 401 invalid_code / invalid_token."""
    fields = Fields(body)
    mfa_token = fields.string("mfa_token", max_length=4096)
    code = fields.string("code", max_length=MAX_CODE_LENGTH)
    fields.done()
    assert mfa_token is not None and code is not None
    principal = accounts.authenticate(mfa_token, tokens.MFA)  # signature, expiry, typ, revoked, epoch
    claims, user = principal.claims, principal.user
    if ratelimit.hit(f"mfa#{claims.jti}", tokens.MFA_TOKEN_SECONDS, window_is_open=False) > MAX_CODE_ATTEMPTS:
        raise _dead_token()
    if not user.mfa_enabled:
        raise _dead_token()  # turned off since the password step: log in again
    try:
        actions, condition, kind = _proof(user, code.strip())
    except errors.ApiError:
        raise _wrong_code(user, "wrong_code") from None
    try:
        with transact_write() as transaction:
            ratelimit.clear_in(transaction, accounts.account_attempts_key(user.id))
            transaction.save(tokens.revocation(claims), condition=RevokedToken.jti.does_not_exist())
            transaction.save(activity.entry("login", user.id, metadata={"second_factor": kind}))
            transaction.update(User(user.id), actions=actions, condition=condition & accounts.same_epoch(user))
    except TransactWriteError as error:
        reasons = cancellation_codes(error)
        if len(reasons) > 1 and reasons[1] == CONDITION_FAILED:
            raise _dead_token() from None  # this mfa token already made its session
        if CONDITION_FAILED in reasons:
            raise _wrong_code(user, "code_already_used") from None  # a parallel request spent it
        raise
    return tokens.issue_pair(user.id, accounts.epoch_of(user), mfa=True)


def disable(principal: Principal, body: dict[str, Any]) -> None:
    """Turn the factor off: the password (401 invalid_credentials) and a code (401 invalid_code).

    Both count in the account's password-attempt window, cleared only on success. Sessions
    stay (the contract answers 204, no new tokens); staff sessions lose the admin routes,
    which ask that the account still has the factor."""
    code, password = _code(body, "password")
    user = principal.user
    if not user.mfa_enabled:
        raise errors.Conflict("Two-factor authentication is not on.", code="mfa_not_enabled")
    attempts_key = accounts.check_password(user, password, reason="wrong_password_on_mfa_disable")
    try:
        _, condition, _ = _proof(user, code)  # its condition: not spent since (by a log-in)
    except errors.ApiError:
        raise _wrong_code(user, "wrong_code") from None
    off: list[Action] = [
        User.mfa_enabled.set(False),
        User.mfa_secret.remove(),
        User.mfa_pending_secret.remove(),
        User.mfa_last_step.remove(),
        User.mfa_recovery_hashes.remove(),
    ]
    try:
        with transact_write() as transaction:
            ratelimit.clear_in(transaction, attempts_key)
            transaction.save(activity.entry("mfa_disabled", user.id))
            transaction.update(User(user.id), actions=off, condition=condition)
    except TransactWriteError as error:
        if CONDITION_FAILED in cancellation_codes(error):
            raise _wrong_code(user, "code_already_used") from None
        raise


# --- staff -----------------------------------------------------------------------------


def require_second_factor(principal: Principal) -> Principal:
    """403 mfa_required unless this session passed a second factor (a code or a passkey) and
    the account still has one."""
    if not (principal.claims.mfa and accounts.has_second_factor(principal.user)):
        raise errors.Forbidden(
            "Staff pages need a second factor: turn on two-factor authentication or add a passkey, "
            "then log in with it.",
            code="mfa_required",
        )
    return principal


def ask_to_enrol(transaction: TransactWrite, user: User, *, base_url: str) -> None:
    """Tell a new staff member without a second factor to turn one on: the email's job joins
    the transaction that makes them staff."""
    if not accounts.has_second_factor(user):
        jobs.add(transaction, "mfa_enrol", user_id=user.id, base_url=base_url)


def enrol_mails(job: dict[str, Any]) -> Iterator[Outgoing]:
    compose = partial(_enrol_letter, str(job.get("user_id") or ""), str(job.get("base_url") or ""))
    yield Outgoing(str(job["id"]), compose)


def _enrol_letter(user_id: str, base_url: str) -> Letter | None:
    try:
        user = User.get(user_id)
    except DoesNotExist:
        return None
    if accounts.has_second_factor(user) or not (user.is_staff or user.is_superuser) or not user.email:
        return None  # enrolled, or no longer staff, by the time the worker runs
    link = f"{base_url}/dashboard/"
    return Letter(user.email, "mfa_enrol", user.language or "en", {"username": user.username, "link": link})
