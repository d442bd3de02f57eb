"""One-time recovery codes for the second factor: made once, shown once, stored hashed.

Each code carries 80 random bits, so a guess-per-hash search is hopeless even against a
fast hash: plain SHA-256 suffices, and bcrypt's cost would only slow log-in for nothing.
Hashes compare as strings, so the caller can remove one with a conditional update
(the code is used exactly once, even by parallel requests).
"""

from __future__ import annotations

import base64
import hashlib
import secrets

COUNT = 10
CODE_BYTES = 10  # 80 bits -> 16 base32 characters, shown in four groups of four


def new_codes() -> list[str]:
    """COUNT fresh codes in the form shown to the user, e.g. "ABCD-EFGH-JKLM-NPQR"."""
    return [_format(base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii")) for _ in range(COUNT)]


def _format(raw: str) -> str:
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def digest(code: str) -> str:
    """The stored form; ignores case, spaces and dashes so a retyped code still matches."""
    canonical = "".join(code.split()).replace("-", "").upper()
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
