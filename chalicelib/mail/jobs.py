"""Mail jobs on the mail queue: the request path only enqueues, the worker does the rest.

A job is a small JSON object `{"kind", "id", ...}`; `id` names the job for de-duplication
(see `delivery`). Jobs never carry a token: the worker creates a link's token when it sends.
"""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from chalicelib.core import aws, clock, logs, metrics
from chalicelib.core.config import settings

log = logs.get("mail")


def enqueue(kind: str, *, job_id: str | None = None, **fields: Any) -> None:
    """One SendMessage (plus, once per container, the GetQueueUrl of the mail queue)."""
    body = {"kind": kind, "id": job_id or clock.new_id(), **fields}
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=queue_url(), MessageBody=json.dumps(body, sort_keys=True))


def enqueue_after_commit(kind: str, *, job_id: str | None = None, **fields: Any) -> None:
    """Enqueue after the change it tells of was committed: an SQS failure must not turn that
    success into an error answer, so it is logged and counted (`MailNotQueued`) instead."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        enqueue(kind, job_id=job_id, **fields)
    except (BotoCoreError, ClientError) as error:
        logs.event(log, "mail job not queued", logging.ERROR, kind=kind, error=type(error).__name__)
        metrics.count("MailNotQueued")


def queue_url() -> str:
    sqs = aws.client("sqs")
    return _queue_url(sqs, settings().mail_queue)


@functools.cache
def _queue_url(sqs: Any, name: str) -> str:
    """Looked up once per client (a container has one): a queue's URL never changes."""
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])


def parse(record: dict[str, Any]) -> dict[str, Any] | None:
    """The job an SQS record carries, or None for a body that is no job."""
    try:
        job = json.loads(record.get("body") or "")
    except ValueError:
        return None
    if not isinstance(job, dict) or not isinstance(job.get("kind"), str) or not isinstance(job.get("id"), str):
        return None
    return job
