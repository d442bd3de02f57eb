"""Structured JSON log lines carrying the invocation's context; secrets are masked before writing."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# Fields every line of the current invocation carries (function, cold start, ids): a tuple,
# so a nested `bound` extends a copy and leaving it restores the outer one.
_bound: contextvars.ContextVar[tuple[tuple[str, Any], ...]] = contextvars.ContextVar("log_context", default=())

# Keys whose values are secrets, compared whole (case and `-`/`_` aside): a key that merely
# contains one of these words (`access_level`, `token_count`) is ordinary data and kept.
# `store_id` is not among them: aamarPay's return form carries it through every payer's
# browser, so it identifies the merchant without authenticating anything (the signature
# key does that), and operators need it to tell the sandbox store from the live one.
SECRET_KEYS = frozenset(
    {
        "password",
        "password2",
        "current_password",
        "new_password",
        "access",
        "refresh",
        "token",
        "access_token",
        "refresh_token",
        "signature_key",
        "aamarpay_signature_key",
        "jwt_signing_key",
        "authorization",
        "cookie",
        "set_cookie",
    }
)
MASK = "***"
# Secrets inside text: `name=value` pairs of URLs and forms (the same names), JWTs (header
# and payload are base64 of JSON objects, so both start `eyJ`), and bearer credentials.
_SECRET_PAIR = re.compile(r"(?<![\w-])(" + "|".join(sorted(SECRET_KEYS, key=len, reverse=True)) + r")=[^&\s]+", re.I)
_JWT = re.compile(r"\beyJ[\w-]*\.eyJ[\w-]*\.[\w-]*")
_BEARER = re.compile(r"\b(Bearer)\s+[^\s,;]+", re.I)


def is_secret_key(key: object) -> bool:
    return str(key).strip().lower().replace("-", "_") in SECRET_KEYS


def redact_text(text: str) -> str:
    text = _SECRET_PAIR.sub(rf"\1={MASK}", text)
    text = _JWT.sub(MASK, text)
    return _BEARER.sub(rf"\1 {MASK}", text)


def redact(value: Any) -> Any:
    """A copy of `value` with the values of secret keys masked and secrets in text cut."""
    if isinstance(value, dict):
        return {k: MASK if is_secret_key(k) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + "Z",
            "level": record.levelname,
            "logger": record.name,
            "request_id": request_id.get(),
            **redact(dict(_bound.get())),
            "message": redact(record.getMessage()),
        }
        extra = getattr(record, "fields", None)
        if extra:
            line.update(redact(extra))
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add `fields` to every line logged inside the block (in this thread or task only)."""
    token = _bound.set(_bound.get() + tuple(fields.items()))
    try:
        yield
    finally:
        _bound.reset(token)


def setup() -> None:
    """Route the app's loggers through the JSON formatter exactly once."""
    root = logging.getLogger("paidupload")
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False


def get(name: str) -> logging.Logger:
    setup()
    return logging.getLogger(f"paidupload.{name}")


def event(logger: logging.Logger, message: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one structured event: `fields` become top-level JSON keys (redacted)."""
    logger.log(level, message, extra={"fields": fields})
