"""One invocation's context for logs and metrics, for every kind of handler.

Each handler run (HTTP, SQS, schedule) logs with the Lambda request id, the function name and
whether it started the container (`cold_start`); HTTP lines also carry API Gateway's request
id. Metrics recorded during the run are written once at its end, exceptions included, with
the run's duration and, the first time, a cold start.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from chalice.app import Request

from chalicelib.core import coldstart, logs, metrics

_cold = True  # module state lives as long as the container


def _lambda_ids(context: Any) -> tuple[str, str]:
    """(function name, request id) from Lambda's context; local runners may lack the request id."""
    function = getattr(context, "function_name", None) or "local"
    request = getattr(context, "aws_request_id", None) or uuid.uuid4().hex
    return str(function), str(request)


def _take_cold_start() -> bool:
    global _cold
    cold, _cold = _cold, False
    return cold


@contextmanager
def invocation(context: Any, **fields: str) -> Iterator[None]:
    """Log context and metric buffer for one handler run, from Lambda's `context`."""
    function, request_id = _lambda_ids(context)
    cold = _take_cold_start()
    token = logs.request_id.set(request_id)
    started = time.perf_counter()
    try:
        with logs.bound(function=function, cold_start=cold, **fields), metrics.collecting():
            try:
                yield
            finally:
                metrics.timing("HandlerDuration", (time.perf_counter() - started) * 1000, function=function)
                if cold:
                    metrics.count("ColdStarts", function=function)
    finally:
        logs.request_id.reset(token)
        coldstart.resume_collector()


@contextmanager
def http_invocation(request: Request) -> Iterator[str]:
    """`invocation` for an API request; yields API Gateway's request id (the one clients see).

    For `web.request_context_middleware` to wrap its body in.
    """
    api_request_id = str((request.context or {}).get("requestId") or uuid.uuid4().hex)
    with invocation(request.lambda_context, api_request_id=api_request_id):
        yield api_request_id


def event_middleware(event: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice middleware for the SQS and scheduled handlers (their events carry `.context`)."""
    with invocation(event.context):
        return get_response(event)
