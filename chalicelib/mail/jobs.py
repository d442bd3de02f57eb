"""Mail jobs: written to the outbox with the change that causes them, relayed to the mail queue.

A job is a small JSON object `{"kind", "id", ...}`; `id` names the job for de-duplication
(see `delivery`). Jobs never carry a token: the worker creates a link's token when it sends.

The request path never calls SQS. A job is one more item of the transaction that makes the
change it tells of (`add`), or, where no change causes it (a reset link or a new verification
link asked for), one PutItem (`put`). The outbox table's stream hands each new item to `relay`,
which puts it on the mail queue, where the mail worker's retries and dead-letter queue take over.
So an email is queued exactly when its change commits: a crash after the commit loses none, and a
change that failed sends none (docs/accounts.md, "Emails").
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import timedelta
from typing import Any

from pynamodb.transactions import TransactWrite

from chalicelib.core import aws, clock, logs, metrics
from chalicelib.core.config import settings
from chalicelib.core.models import Outbox

log = logs.get("mail")

KEEP = timedelta(days=7)  # an item outlives its stream record (24 h), for the record
SEND_BATCH = 10  # SendMessageBatch's limit


def job_item(kind: str, *, job_id: str | None = None, **fields: Any) -> Outbox:
    """The outbox item of one job; its key is new each time, so every item is an INSERT."""
    item_id, now = clock.new_id(), clock.now()
    job = {"kind": kind, "id": job_id or item_id, **fields}
    return Outbox(item_id, job=job, created_at=clock.iso(now), expires_at=now + KEEP)


def add(transaction: TransactWrite, kind: str, *, job_id: str | None = None, **fields: Any) -> None:
    """The job as one more item of the change's transaction: committed with it, or not at all."""
    transaction.save(job_item(kind, job_id=job_id, **fields))


def put(kind: str, *, job_id: str | None = None, **fields: Any) -> None:
    """A job that no change causes: one PutItem."""
    job_item(kind, job_id=job_id, **fields).save()


def relay(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The outbox stream's handler: each new job onto the mail queue, in stream order.

    Answers a partial batch response naming the first record not queued (SQS refused it or
    could not be reached): Lambda's mapping checkpoints every record before it and retries from
    it. Records after it are sent again then; the worker's dedupe keys make that harmless. A
    record that holds no job is logged and passed over: retrying it could never succeed.
    """
    queued: list[tuple[str, dict[str, Any]]] = []
    for record in records:
        job = _job_of(record)
        if job is None:
            logs.event(log, "outbox record without a job passed over", logging.WARNING)
            continue
        queued.append((record["dynamodb"]["SequenceNumber"], job))
    for start in range(0, len(queued), SEND_BATCH):
        chunk = queued[start : start + SEND_BATCH]
        failed = _send(chunk)
        if failed is not None:
            logs.event(log, "mail jobs not relayed; retried from the first", logging.ERROR, jobs=len(queued) - start)
            metrics.count("MailNotRelayed")
            return {"batchItemFailures": [{"itemIdentifier": chunk[failed][0]}]}
    if queued:
        metrics.count("MailRelayed", value=len(queued))
    return {"batchItemFailures": []}


def _job_of(record: dict[str, Any]) -> dict[str, Any] | None:
    image = record.get("dynamodb", {}).get("NewImage")
    if record.get("eventName") != "INSERT" or not isinstance(image, dict):
        return None
    try:
        job = Outbox.from_raw_data(image).job
    except (AttributeError, KeyError, TypeError, ValueError):
        return None
    return job if isinstance(job, dict) else None


def _send(chunk: list[tuple[str, dict[str, Any]]]) -> int | None:
    """One SendMessageBatch; the index of the first entry not queued, or None when all were."""
    from botocore.exceptions import BotoCoreError, ClientError

    entries = [{"Id": str(i), "MessageBody": json.dumps(job, sort_keys=True)} for i, (_, job) in enumerate(chunk)]
    try:
        reply = aws.client("sqs").send_message_batch(QueueUrl=queue_url(), Entries=entries)
    except (BotoCoreError, ClientError) as error:
        logs.event(log, "mail queue unreachable", logging.ERROR, error=type(error).__name__)
        return 0
    failed = [int(entry["Id"]) for entry in reply.get("Failed", [])]
    return min(failed) if failed else None


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
