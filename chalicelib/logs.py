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

_SECRET_KEYS = re.compile(r"pass|secret|token|signature|authorization|refresh|access|cookie", re.I)
_SECRET_QUERY = re.compile(r"(signature_key|password|token)=[^&\s]+", re.I)


def redact(value: Any) -> Any:
    """A copy of `value` with secret-looking keys masked and key=value secrets in text cut."""
    if isinstance(value, dict):
        return {k: "***" if _SECRET_KEYS.search(str(k)) else redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return _SECRET_QUERY.sub(r"\1=***", value)
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
