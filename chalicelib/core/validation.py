"""Typed field extraction from JSON bodies, collecting every field error at once."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from chalicelib.core import errors

_MISSING = object()
_QUERY_INT = re.compile(r"[0-9]{1,6}")  # ASCII digits (`str.isdigit` takes `²`), few enough for `int`


def query_int(raw: str | None, *, name: str, minimum: int, maximum: int, default: int, code: str) -> int:
    """A bounded integer query parameter (`?limit=`, `?days=`); 400 `code` for anything else."""
    if raw is None or raw == "":
        return default
    if not _QUERY_INT.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise errors.ValidationError(f"{name} must be an integer from {minimum} to {maximum}.", code=code)
    return int(raw)


def is_scalar_text(value: str) -> bool:
    """Whether `value` is text every store and log can take: Unicode scalar values only.

    JSON lets a client send a lone surrogate (`"\\ud800"`), which Python decodes into a
    `str` that cannot be encoded as UTF-8: DynamoDB, bcrypt and the log writer would fail
    on it deep inside a request, so it is refused at the edge as a field error.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class Fields:
    """Read fields from a request body; `done()` raises one 400 listing every problem."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.problems: dict[str, str] = {}

    def _get(self, name: str, required: bool) -> Any:
        value = self.body.get(name, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.problems[name] = "This field is required."
            return _MISSING
        return value

    def string(self, name: str, *, required: bool = True, max_length: int | None = 1000) -> str | None:
        """A string field; `max_length=None` for one whose every length has one answer (a token)."""
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, str):
            self.problems[name] = "Must be a string."
            return None
        if not is_scalar_text(value):
            self.problems[name] = "Must be valid Unicode text (no lone surrogates)."
            return None
        if required and not value.strip():
            self.problems[name] = "This field may not be blank."
            return None
        if max_length is not None and len(value) > max_length:
            self.problems[name] = f"At most {max_length} characters."
            return None
        return value

    def integer(self, name: str, *, minimum: int = 0, required: bool = True) -> int | None:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.problems[name] = "Must be an integer."
            return None
        if value < minimum:
            self.problems[name] = f"Must be at least {minimum}."
            return None
        return value

    def boolean(self, name: str, *, required: bool = True) -> bool | None:
        value = self._get(name, required)
        if value is _MISSING:
            return None
        if not isinstance(value, bool):
            self.problems[name] = "Must be true or false."
            return None
        return value

    def fail(self, name: str, message: str) -> None:
        self.problems.setdefault(name, message)

    def done(self) -> None:
        if self.problems:
            raise errors.ValidationError("Some fields are invalid.", details=self.problems)


def is_web_url(url: str) -> bool:
    """An absolute http(s) URL with a host and no whitespace (what a browser can be sent to)."""
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not any(c.isspace() for c in url)


PASSWORD_MIN_BYTES = 8
PASSWORD_MAX_BYTES = 72  # bcrypt's own limit; bcrypt 5 raises beyond it instead of truncating


def password_problem(password: str) -> str | None:
    """Why this password is refused, or None: its length in bytes of UTF-8, which no JSON Schema
    states, so the edge (`declare.Text.rule`) and the domain both ask this."""
    size = len(password.encode("utf-8", "surrogatepass"))
    if size < PASSWORD_MIN_BYTES:
        return f"Password must be at least {PASSWORD_MIN_BYTES} bytes."
    if size > PASSWORD_MAX_BYTES:
        return f"Password must be at most {PASSWORD_MAX_BYTES} bytes of UTF-8."
    return None
