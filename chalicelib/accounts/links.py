"""The tokens of emailed links (password reset, email verification): one module, both kinds.

A token is `<user id>.<256 random bits, urlsafe>`; the account keeps only its sha256 and its
expiry, in a pair of attributes per kind of link, so a new link replaces (supersedes) the
last and a leaked table holds nothing a link can be rebuilt from. Spending a token is a write
conditional on the hash that was read (`unchanged`): of parallel uses, one wins.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.core import clock, errors
from chalicelib.core.models import User

MAX_TOKEN_LENGTH = 200  # longer ones are not ours: invalid, like any unknown token
INVALID = "This link is invalid, used, expired or replaced by a newer one."


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def invalid() -> errors.ApiError:
    return errors.ValidationError(INVALID, code="invalid_token")


@dataclass(frozen=True)
class LinkKind:
    """One kind of link: the `User` attributes holding its hash and expiry, and its lifetime."""

    hash_attribute: str
    expires_attribute: str
    seconds: int

    def new(self, user_id: str) -> tuple[str, list[Any]]:
        """A fresh token and the update actions that store its hash and expiry (replacing the last)."""
        token = f"{user_id}.{secrets.token_urlsafe(32)}"
        expires_at = clock.iso(clock.now() + timedelta(seconds=self.seconds))
        return token, [self._hash.set(token_hash(token)), self._expires.set(expires_at)]

    def spent(self) -> list[Any]:
        """The update actions that remove the token (single use)."""
        return [self._hash.remove(), self._expires.remove()]

    def unchanged(self, token: str) -> Any:
        """The condition that the account still holds this token (nobody spent or replaced it)."""
        return self._hash == token_hash(token)

    def holder(self, token: str) -> User:
        """The account whose newest, unexpired token this is (one consistent read), else 400."""
        user_id, _, secret = token.partition(".")
        if not secret or not clock.is_id(user_id) or len(token) > MAX_TOKEN_LENGTH:
            raise invalid()  # malformed: the table is not asked
        try:
            user = User.get(user_id, consistent_read=True)
        except DoesNotExist:
            raise invalid() from None
        if not hmac.compare_digest(getattr(user, self.hash_attribute) or "", token_hash(token)):
            raise invalid()
        if (getattr(user, self.expires_attribute) or "") <= clock.now_iso():
            raise invalid()
        return user

    @property
    def _hash(self) -> Any:
        return getattr(User, self.hash_attribute)

    @property
    def _expires(self) -> Any:
        return getattr(User, self.expires_attribute)
