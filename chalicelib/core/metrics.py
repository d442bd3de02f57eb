"""Business metrics as CloudWatch Embedded Metric Format (EMF) lines on stdout.

Lambda ships stdout to CloudWatch Logs, which turns each EMF line into metrics: no API call,
no IAM permission, no latency on the request path, and the local stack prints the very same
lines. Inside an invocation (`collecting`, opened by `chalicelib.core.observability`) values are
buffered and written once at its end, exceptions included; outside one each call is written
at once. Why not Powertools' `Metrics`: see docs/observability.md.

Every metric is declared in `CATALOG` with its unit and the dimensions it may carry, and each
dimension with the values it may take: the alarms and the dashboard are built from the same
declarations, and no e-mail, user name, id or secret can become a dimension.
"""

from __future__ import annotations

import contextvars
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.config import settings

MAX_METRICS_PER_DOCUMENT = 100  # EMF's limit, per document
MAX_VALUES_PER_METRIC = 100  # EMF's limit, per metric array

# A Lambda function name: the only dimension whose values are not a closed list.
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")

DIMENSION_VALUES: dict[str, frozenset[str] | None] = {
    "status": frozenset({"success", "review", "failed", "cancelled", "expired"}),
    "reason": frozenset({"unknown", "mismatch", "forged"}),
    "call": frozenset({"initiate", "search"}),
    "function": None,  # checked against _FUNCTION_NAME
    "kind": frozenset({"verify", "reset", "changed", "mfa_enrol", "receipt"}),  # the email's template
}


@dataclass(frozen=True)
class MetricSpec:
    unit: str  # an EMF/CloudWatch unit name
    dimensions: tuple[str, ...] = ()
    doc: str = ""


CATALOG: dict[str, MetricSpec] = {
    "PaymentsInitiated": MetricSpec("Count", doc="a payment was created and sent to the gateway"),
    "PaymentsSettled": MetricSpec("Count", ("status",), "a payment reached a final status"),
    "ReturnsRejected": MetricSpec("Count", ("reason",), "a gateway return was refused"),
    "GatewayLatency": MetricSpec("Milliseconds", ("call",), "one aamarPay call, answered or not"),
    "GatewayErrors": MetricSpec("Count", ("call",), "an aamarPay call timed out, refused or was unreadable"),
    "GatewayAuthFailed": MetricSpec("Count", ("call",), "aamarPay refused our store id or signature key"),
    "PaymentsMismatched": MetricSpec("Count", doc="a payment expired while the gateway's success did not match it"),
    "ReconcilerChecked": MetricSpec("Count", doc="due payments the reconciler asked the gateway about"),
    "ReconcilerSettled": MetricSpec("Count", doc="of those, payments the reconciler settled"),
    "ReconcilerBacklogAge": MetricSpec("Seconds", doc="age of the oldest due pending payment (0: none)"),
    "FilesCompleted": MetricSpec("Count", doc="a file was counted"),
    "FilesFailed": MetricSpec("Count", doc="a file was refused or failed for good"),
    "UploadsExpired": MetricSpec("Count", doc="pending uploads whose bytes never came, expired by the hourly job"),
    "WordsCounted": MetricSpec("Count", doc="words in completed files"),
    "WorkerDuration": MetricSpec("Milliseconds", doc="one file's processing, download to count"),
    "MailSent": MetricSpec("Count", ("kind",), "an email was handed to the sender backend (SES, outbox)"),
    "MailFailed": MetricSpec("Count", doc="sending an email failed; its message stays queued for a retry"),
    "MailRelayed": MetricSpec("Count", doc="email jobs the relay moved from the outbox's stream to the mail queue"),
    "MailNotRelayed": MetricSpec("Count", doc="SQS refused the relay's jobs; the stream retries from the first"),
    "LoginsFailed": MetricSpec("Count", doc="a login with a wrong password or unknown user"),
    "SecondFactorsFailed": MetricSpec("Count", doc="a wrong, replayed or spent second-factor code"),
    "AccountLockouts": MetricSpec("Count", doc="an account was locked after repeated failures"),
    "ColdStarts": MetricSpec("Count", ("function",), "an invocation that started a new container"),
    "HandlerDuration": MetricSpec("Milliseconds", ("function",), "one invocation, as the middleware saw it"),
}


def namespace() -> str:
    """One namespace per stage, so prod's alarms never see a test stage's values."""
    return f"PaidUpload/{settings().stage}"


def _checked(name: str, dimensions: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """The dimensions in a stable order; ValueError for an undeclared metric, dimension or value."""
    spec = CATALOG.get(name)
    if spec is None:
        raise ValueError(f"undeclared metric {name!r}")
    if set(dimensions) != set(spec.dimensions):
        raise ValueError(f"metric {name!r} takes dimensions {spec.dimensions}, got {tuple(dimensions)}")
    for key, value in dimensions.items():
        allowed = DIMENSION_VALUES[key]
        if (allowed is None and not _FUNCTION_NAME.fullmatch(value)) or (allowed is not None and value not in allowed):
            raise ValueError(f"metric {name!r}: {value!r} is not a {key} dimension value")
    return tuple(sorted(dimensions.items()))


@dataclass
class Buffer:
    """Values recorded during one invocation, grouped by their dimension values."""

    groups: dict[tuple[tuple[str, str], ...], dict[str, list[float]]] = field(default_factory=dict)

    def add(self, name: str, value: float, dimensions: tuple[tuple[str, str], ...], summed: bool) -> None:
        values = self.groups.setdefault(dimensions, {}).setdefault(name, [])
        if summed and values:
            values[0] += value  # a count: one summed value keeps the line short
        else:
            values.append(float(value))

    def documents(self) -> Iterator[dict[str, Any]]:
        """EMF documents: one per set of dimension values, at most 100 metrics and 100 values each."""
        timestamp = int(time.time() * 1000)
        for dimensions, by_name in self.groups.items():
            series = [
                (name, values[start : start + MAX_VALUES_PER_METRIC])
                for name, values in by_name.items()
                for start in range(0, len(values), MAX_VALUES_PER_METRIC)
            ]
            while series:
                document: dict[str, Any] = dict(dimensions)
                batch: list[tuple[str, list[float]]] = []
                rest: list[tuple[str, list[float]]] = []
                for name, values in series:  # a name appears once per document
                    fits = len(batch) < MAX_METRICS_PER_DOCUMENT and name not in document
                    (batch if fits else rest).append((name, values))
                    if fits:
                        document[name] = values
                document["_aws"] = {
                    "Timestamp": timestamp,
                    "CloudWatchMetrics": [
                        {
                            "Namespace": namespace(),
                            "Dimensions": [[key for key, _ in dimensions]],
                            "Metrics": [{"Name": name, "Unit": CATALOG[name].unit} for name, _ in batch],
                        }
                    ],
                }
                yield document
                series = rest


_current: contextvars.ContextVar[Buffer | None] = contextvars.ContextVar("metrics_buffer", default=None)
_write_lock = threading.Lock()


def _write(buffer: Buffer) -> None:
    lines = "".join(json.dumps(document, separators=(",", ":")) + "\n" for document in buffer.documents())
    if lines:
        with _write_lock:  # whole lines, even with the local stack's threads
            sys.stdout.write(lines)
            sys.stdout.flush()


def _record(name: str, value: float, dimensions: dict[str, str], *, summed: bool) -> None:
    key = _checked(name, dimensions)
    buffer = _current.get()
    if buffer is not None:
        buffer.add(name, value, key, summed)
        return
    single = Buffer()
    single.add(name, value, key, summed)
    _write(single)


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """Add `value` to the counter `name` (e.g. `count("ReturnsRejected", reason="forged")`)."""
    _record(name, value, dimensions, summed=True)


def timing(name: str, milliseconds: float, **dimensions: str) -> None:
    """Record one duration; CloudWatch keeps each value, so percentiles work."""
    _record(name, round(milliseconds, 3), dimensions, summed=False)


def gauge(name: str, value: float, **dimensions: str) -> None:
    """Record one reading of a level (a backlog's age): alarm on its Maximum."""
    _record(name, value, dimensions, summed=False)


@contextmanager
def collecting() -> Iterator[None]:
    """Buffer every metric recorded inside the block and write them once on leaving it, raise or not."""
    buffer = Buffer()
    token = _current.set(buffer)
    try:
        yield
    finally:
        _current.reset(token)
        _write(buffer)
