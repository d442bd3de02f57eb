"""JWT access and refresh tokens: HS256 pinned, every claim required, revocation by `jti`.

Each token also carries the account's `epoch` (0 when absent): a password change moves the
account's epoch, which ends every token issued before it without listing them. A session that
passed the second factor carries `mfa: true`, kept through refresh. Between the password and
the code, the caller holds an `mfa` token: its own `typ`, so it is never an access token.
`auth_time` is when the session last proved a password, a code or a passkey (Unix seconds),
also kept through refresh: managing passkeys asks that it be recent (`passkeys.require_fresh`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError

from chalicelib.core import clock, errors
from chalicelib.core.config import app_secrets, settings
from chalicelib.core.db import conditional_failed
from chalicelib.core.models import RevokedToken

ALGORITHM = "HS256"
ACCESS = "access"
REFRESH = "refresh"
MFA = "mfa"  # password checked, second factor still to come (chalicelib/accounts/mfa.py)
MFA_TOKEN_SECONDS = 5 * 60
REQUIRED_CLAIMS = ["sub", "jti", "iat", "exp", "typ"]


@dataclass(frozen=True)
class Claims:
    user_id: str
    jti: str
    token_type: str
    expires_at: datetime
    epoch: int = 0
    mfa: bool = False  # the session passed the second factor
    auth_time: int = 0  # when the session last proved something (absent on older tokens: never)


def _issue(
    user_id: str, token_type: str, lifetime: int, epoch: int, *, mfa: bool = False, auth_time: int | None = None
) -> str:
    import jwt

    now = clock.now()
    payload = {
        "sub": user_id,
        "jti": clock.new_id(),
        "typ": token_type,
        "iat": now,
        "exp": now + timedelta(seconds=lifetime),
        "epoch": epoch,
        "mfa": mfa,
        "auth_time": int(now.timestamp()) if auth_time is None else auth_time,
    }
    return jwt.encode(payload, app_secrets().jwt_signing_key, algorithm=ALGORITHM)


def issue_pair(user_id: str, epoch: int, *, mfa: bool = False, auth_time: int | None = None) -> dict[str, Any]:
    """A session's tokens; `auth_time` (default: now) is carried over by a refresh."""
    config = settings()
    return {
        "access": _issue(user_id, ACCESS, config.access_token_seconds, epoch, mfa=mfa, auth_time=auth_time),
        "refresh": _issue(user_id, REFRESH, config.refresh_token_seconds, epoch, mfa=mfa, auth_time=auth_time),
        "token_type": "Bearer",
        "expires_in": config.access_token_seconds,
        "refresh_expires_in": config.refresh_token_seconds,
    }


def issue_mfa_challenge(user_id: str, epoch: int) -> dict[str, Any]:
    """The answer to a right password on an account with a second factor: no session yet."""
    return {
        "mfa_required": True,
        "mfa_token": _issue(user_id, MFA, MFA_TOKEN_SECONDS, epoch),
        "expires_in": MFA_TOKEN_SECONDS,
    }


def decode(token: str, token_type: str) -> Claims:
    """Verify signature, algorithm, expiry, required claims and type; 401 otherwise.

    Revocation is checked by the caller (it batches that read with loading the user).
    """
    import jwt

    try:
        payload = jwt.decode(
            token,
            app_secrets().jwt_signing_key,
            algorithms=[ALGORITHM],
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise errors.Unauthorized("The token has expired.", code="invalid_token") from None
    except jwt.InvalidTokenError:
        raise errors.Unauthorized("The token is invalid.", code="invalid_token") from None
    epoch = payload.get("epoch", 0)
    if payload.get("typ") != token_type or not isinstance(payload.get("sub"), str) or type(epoch) is not int:
        raise errors.Unauthorized(f"An {token_type} token is required.", code="invalid_token")
    return Claims(
        user_id=payload["sub"],
        jti=str(payload["jti"]),
        token_type=token_type,
        expires_at=datetime.fromtimestamp(payload["exp"], tz=UTC),
        epoch=epoch,
        mfa=payload.get("mfa") is True,
        auth_time=auth_time if type(auth_time := payload.get("auth_time", 0)) is int else 0,
    )


def revocation(claims: Claims) -> RevokedToken:
    """The unsaved revocation record; it lives until the token would have expired anyway."""
    return RevokedToken(claims.jti, expires_at=claims.expires_at + timedelta(seconds=60))


def revoke_once(claims: Claims) -> None:
    """Revoke a refresh token atomically; a second use of the same token is refused."""
    try:
        revocation(claims).save(condition=RevokedToken.jti.does_not_exist())
    except PutError as error:
        if conditional_failed(error):
            raise errors.Unauthorized("This refresh token was already used.", code="invalid_token") from None
        raise
