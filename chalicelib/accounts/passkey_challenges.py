"""WebAuthn challenges: signed by us, bound to one ceremony and account, spent once.

A challenge is its own record: a random nonce, the ceremony (`register` or `login`), the
account it is for (empty for a discoverable sign-in) and its expiry, followed by an HMAC of
all of it. Issuing one writes nothing, so the anonymous options route cannot fill a table;
the browser hands it back inside `clientDataJSON`, and the verifying route checks the MAC,
the ceremony and the time, and spends the nonce in its own transaction: a conditional put
of `passkey#<nonce>` into the revoked-tokens table (TTL), refused if it is there already.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pynamodb.expressions.condition import Condition

from chalicelib.core import clock, errors
from chalicelib.core.config import app_secrets
from chalicelib.core.models import RevokedToken

CHALLENGE_SECONDS = 5 * 60
REGISTER, LOGIN = "register", "login"
_CEREMONY_BYTES = {REGISTER: b"R", LOGIN: b"L"}
_VERSION = b"\x01"
_NONCE_BYTES = 16
_MAC_BYTES = 16
_HEAD = struct.Struct(">c c I 16s")  # version, ceremony, expiry (Unix seconds), nonce


class InvalidChallenge(errors.ApiError):
    """Raised for a challenge we did not issue, of another ceremony, or expired."""


@dataclass(frozen=True)
class Challenge:
    raw: bytes  # what the browser signed over
    ceremony: str
    user_id: str  # the account it was issued for ("" for a discoverable sign-in)
    nonce: bytes
    expires_at: datetime


def _mac(payload: bytes) -> bytes:
    key = hashlib.sha256(b"passkey-challenge:" + app_secrets().jwt_signing_key.encode()).digest()
    return hmac.new(key, payload, hashlib.sha256).digest()[:_MAC_BYTES]


def issue(ceremony: str, user_id: str = "") -> bytes:
    """A fresh challenge for `ceremony`, for `user_id` (or anyone, when empty)."""
    expires = int(clock.now().timestamp()) + CHALLENGE_SECONDS
    head = _HEAD.pack(_VERSION, _CEREMONY_BYTES[ceremony], expires, secrets.token_bytes(_NONCE_BYTES))
    payload = head + user_id.encode()
    return payload + _mac(payload)


def read(raw: bytes, ceremony: str) -> Challenge:
    """The challenge's contents if we issued it for `ceremony` and it has not expired."""
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if len(payload) < _HEAD.size or not hmac.compare_digest(mac, _mac(payload)):
        raise InvalidChallenge("The challenge was not issued here.")
    version, kind, expires, nonce = _HEAD.unpack(payload[: _HEAD.size])
    if version != _VERSION or kind != _CEREMONY_BYTES[ceremony]:
        raise InvalidChallenge("The challenge belongs to another ceremony.")
    expires_at = datetime.fromtimestamp(expires, tz=UTC)
    if expires_at <= clock.now():
        raise InvalidChallenge("The challenge has expired.")
    return Challenge(raw, ceremony, payload[_HEAD.size :].decode(), nonce, expires_at)


def spent(challenge: Challenge) -> RevokedToken:
    """The unsaved marker that spends `challenge`; save it with `unspent()` as its condition."""
    return RevokedToken(f"passkey#{challenge.nonce.hex()}", expires_at=challenge.expires_at + timedelta(seconds=60))


def unspent() -> Condition:
    return RevokedToken.jti.does_not_exist()
