"""Readiness: the service answers `ok` only when it can reach its tables."""

from __future__ import annotations

from typing import Any

from pynamodb.exceptions import PynamoDBException

from chalicelib.core import errors, logs
from chalicelib.core.config import LOCAL_STAGES, settings
from chalicelib.core.models import Counter

log = logs.get("health")


class Unavailable(errors.ApiError):
    status, code = 503, "unavailable"


def check() -> dict[str, Any]:
    """One cheap read (a counter item) proves the table store answers with our credentials."""
    try:
        Counter.count("users", limit=1)
    except PynamoDBException:
        log.exception("health check failed")
        raise Unavailable("The service cannot reach its database.") from None
    config = settings()
    if config.stage not in LOCAL_STAGES and config.allow_sandbox_gateway:
        return {"status": "ok", "gateway": "sandbox"}  # a trial stage: say so where everyone looks
    return {"status": "ok"}
