"""The mail worker's state machine: each dedupe key is sent once, whatever SQS redelivers.

Per email, one `MailLog` item keyed by its dedupe key (a job id plus recipient account, or
`receipt#<transaction id>`):
1. claim: conditional put `sending` with a lease, unless the key is `sent`/`dropped` or another
   run holds a live lease (then the message is retried later, when that run has finished);
2. compose (may write: a reset link's token is created only now, by the run that claimed);
3. send through the backend; on an error the claim is released and the error propagates, so
   the message stays on the queue, is retried, and after the last retry lands on the DLQ;
4. mark `sent`.
"Exactly once" therefore means: never twice for a redelivered or duplicated job, never lost
for a failing SES; the one gap is a crash between SES accepting and step 4, after which the
lease runs out and the email is sent again (a duplicate is preferred to a loss).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pynamodb.exceptions import DeleteError, PutError

from chalicelib.core import clock, logs, metrics
from chalicelib.core.config import settings
from chalicelib.core.db import conditional_failed
from chalicelib.core.models import MailLog
from chalicelib.mail import jobs, messages, senders
from chalicelib.mail.messages import Letter

LEASE_SECONDS = 120  # longer than one send may take; shorter than the queue's visibility timeout
KEEP_DAYS = 14  # the DLQ's retention: no message can come back after its key is forgotten
SENDING, SENT, DROPPED = "sending", "sent", "dropped"

log = logs.get("mail")


class Busy(Exception):
    """Another run holds this email's lease: let SQS bring the message back later."""


@dataclass(frozen=True)
class Outgoing:
    """One email a job asks for: its dedupe key and how to compose it (None: nothing to send)."""

    dedupe_key: str
    compose: Callable[[], Letter | None]


Handler = Callable[[dict[str, Any]], Iterable[Outgoing]]


def handle_records(records: list[dict[str, Any]], handlers: dict[str, Handler]) -> None:
    """The mail queue's handler: every job kind goes to its domain handler."""
    for record in records:
        job = jobs.parse(record)
        handler = handlers.get(job["kind"]) if job else None
        if job is None or handler is None:
            logs.event(log, "mail job of no known kind dropped", logging.WARNING)
            continue
        for outgoing in handler(job):
            deliver(outgoing)


def deliver(outgoing: Outgoing) -> bool:
    """Claim, compose, send, mark; True when this call sent the email."""
    key = outgoing.dedupe_key
    if not _claim(key):
        return False
    try:
        letter = outgoing.compose()
        if letter is None:
            _finish(key, DROPPED)
            return False
        senders.send(letter, messages.render(letter, settings().mail_from), key)
    except Exception:
        with contextlib.suppress(DeleteError):
            MailLog(key).delete(condition=MailLog.state == SENDING)
        metrics.count("MailFailed")
        raise
    _finish(key, SENT)
    metrics.count("MailSent", kind=letter.kind)
    logs.event(log, "mail sent", kind=letter.kind)
    return True


def _claim(key: str) -> bool:
    now = clock.now()
    item = MailLog(
        key,
        state=SENDING,
        lease_until=clock.iso(now + timedelta(seconds=LEASE_SECONDS)),
        expires_at=now + timedelta(days=KEEP_DAYS),
    )
    try:
        item.save(
            condition=MailLog.key.does_not_exist()
            | ((MailLog.state == SENDING) & (MailLog.lease_until < clock.iso(now)))
        )
        return True
    except PutError as error:
        if not conditional_failed(error):
            raise
    current = MailLog.get(key, consistent_read=True)
    if current.state == SENDING:
        raise Busy(f"another run is sending {key}")
    return False  # sent or dropped before: a duplicate delivery


def _finish(key: str, state: str) -> None:
    MailLog(key).update(actions=[MailLog.state.set(state), MailLog.lease_until.remove()])
