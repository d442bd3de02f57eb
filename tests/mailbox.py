"""Mail as tests read it: relay the outbox's stream to the mail queue, run the mail worker, open
the local outbox (the emails it wrote)."""

from __future__ import annotations

import re
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from chalice.test import Client

from chalicelib.core import aws
from chalicelib.core.config import settings
from chalicelib.core.models import Outbox
from chalicelib.mail import senders
from local import bootstrap
from local.runner import Checkpoints, StreamPoller, lambda_sqs_event, stream_pollers

LINK = re.compile(r"https?://\S+/dashboard/\?(reset|verify)=([A-Za-z0-9._-]+)")


_relays: dict[str, StreamPoller] = {}


def relay_poller() -> StreamPoller:
    """The outbox stream's mapping to the mail relay (one per stream: each test's moto account
    has its own), remembering how far it has read."""
    import app

    stream = bootstrap.stream_arns()[Outbox.Meta.table_name]
    if stream not in _relays:
        _relays.clear()
        (_relays[stream],) = stream_pollers(app, {Outbox.Meta.table_name: stream}, Checkpoints())
        _relays[stream].window_seconds = 0  # a test reads what is there, without waiting for more
    return _relays[stream]


def relay() -> None:
    """The mail relay on every outbox record not relayed yet."""
    relay_poller().drain()


def queued() -> list[dict[str, Any]]:
    """Relay the outbox, then receive every message on the mail queue (they come back after the
    visibility timeout)."""
    relay()
    return received()


def received() -> list[dict[str, Any]]:
    """Every message on the mail queue now, without relaying first."""
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=settings().mail_queue)["QueueUrl"]
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"]).get("Messages"):
        messages += batch
    return messages


def delete(messages: list[dict[str, Any]]) -> None:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=settings().mail_queue)["QueueUrl"]
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def run_worker(client: Client, messages: list[dict[str, Any]]) -> None:
    """Hand each message to the mail function as Lambda would, deleting it unless its partial
    batch response sends it back to the queue."""
    for message in messages:
        if not invoke(client, message)["batchItemFailures"]:
            delete([message])


def invoke(client: Client, message: dict[str, Any]) -> Any:
    """The mail function on one message, as Lambda's poller hands it over (no deletion); its answer."""
    event = lambda_sqs_event([message], "arn:aws:sqs:us-east-1:1:mail", "us-east-1")
    return client.lambda_.invoke("send_mail", event).payload


def deliver_all(client: Client) -> None:
    run_worker(client, queued())


def outbox() -> list[EmailMessage]:
    folder = senders.outbox_dir()
    paths = sorted(folder.glob("*.eml")) if folder.exists() else []
    return [_read(path) for path in paths]


def _read(path: Path) -> EmailMessage:
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert isinstance(message, EmailMessage)
    return message


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def links(message: EmailMessage, kind: str = "reset") -> list[str]:
    return [token for found, token in LINK.findall(text_of(message)) if found == kind]


def wait_for_links(folder: Path, to: str, kind: str, count: int = 1, timeout: float = 20.0) -> list[str]:
    """The first `count` distinct `kind` links (`reset` | `verify`) in emails to `to`, in the order
    a running stack's mail worker wrote them into `folder` (waits for the files)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found: list[str] = []
        for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
            message = _read(path)
            if message["To"] == to:
                found += [m.group(0) for m in LINK.finditer(text_of(message)) if m.group(1) == kind]
        if len(distinct := list(dict.fromkeys(found))) >= count:
            return distinct[:count]
        time.sleep(0.1)  # polling the directory for the worker's files: the event is their appearance
    raise AssertionError(f"fewer than {count} {kind} emails to {to} within {timeout} s")
