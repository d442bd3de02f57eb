"""bcrypt hashing with a configurable cost and the 72-byte limit enforced up front."""

from __future__ import annotations

import functools

import bcrypt

from chalicelib.core.config import settings
from chalicelib.core.validation import PASSWORD_MAX_BYTES as MAX_BYTES
from chalicelib.core.validation import PASSWORD_MIN_BYTES as MIN_BYTES
from chalicelib.core.validation import password_problem as problem

__all__ = ["MAX_BYTES", "MIN_BYTES", "hash_password", "problem", "verify"]


def hash_password(password: str) -> str:
    salt = bcrypt.gensalt(rounds=settings().bcrypt_rounds)
    return bcrypt.hashpw(password.encode("utf-8"), salt).decode("ascii")


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> bytes:
    return hash_password("not-a-real-password").encode("ascii")


def verify(password: str, hashed: str | None) -> bool:
    """Constant work whether or not the user exists: unknown users check a dummy hash."""
    candidate = password.encode("utf-8")
    if len(candidate) > MAX_BYTES:
        candidate = candidate[:MAX_BYTES]  # never stored; still spend the same time
        hashed = None
    target = hashed.encode("ascii") if hashed else _dummy_hash()
    matches = bcrypt.checkpw(candidate, target)
    return matches and hashed is not None
