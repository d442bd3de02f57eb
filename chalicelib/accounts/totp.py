"""TOTP codes per RFC 6238 (HMAC-SHA-1, 6 digits, 30 s steps) in plain `hmac`.

Written out rather than taken from pyotp: the algorithm is ~20 lines, the RFC's own test
vectors pin it (tests/unit/accounts/test_totp.py), and the caller needs the matched time
step (not a bool) to refuse replays with a conditional write on the account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import time
from urllib.parse import quote

STEP_SECONDS = 30
DIGITS = 6
SECRET_BYTES = 20  # 160 bits, the size RFC 4226 recommends for SHA-1
DRIFT_STEPS = 1  # the previous and the next step are accepted too


def new_secret() -> str:
    """A fresh random base32 secret (no padding, as authenticator apps expect)."""
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii").rstrip("=")


def _key(secret: str) -> bytes:
    padded = secret.upper() + "=" * (-len(secret) % 8)
    return base64.b32decode(padded)


def code_at(secret: str, step: int) -> str:
    """The code for one time step (RFC 4226 HOTP with the step as counter)."""
    digest = hmac.new(_key(secret), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**DIGITS).zfill(DIGITS)


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def matching_step(secret: str, code: str, now: float | None = None) -> int | None:
    """The time step within the drift window whose code equals `code`, or None.

    Compared in constant time; anything but exactly DIGITS ASCII digits never matches.
    """
    if len(code) != DIGITS or not code.isascii() or not code.isdigit():
        return None
    centre = current_step(now)
    found: int | None = None
    for step in range(centre - DRIFT_STEPS, centre + DRIFT_STEPS + 1):
        if hmac.compare_digest(code_at(secret, step), code) and found is None:
            found = step
    return found


def otpauth_uri(secret: str, account: str, issuer: str) -> str:
    """The provisioning URI authenticator apps read from the QR code."""
    label = quote(f"{issuer}:{account}")
    return (
        f"otpauth://totp/{label}?secret={secret}&issuer={quote(issuer)}"
        f"&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}"
    )
