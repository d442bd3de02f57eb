"""Batched queues: a poison message fails alone, is retried alone and lands alone on the DLQ;
duplicates in a batch stay harmless; the local runner delivers batches as the mapping does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from chalice.test import Client

import app
from chalicelib.core import aws, batches
from chalicelib.core.config import settings
from chalicelib.mail import jobs, senders
from local.runner import SqsPoller, failed_message_ids, lambda_sqs_event, sqs_pollers
from tests import mailbox
from tests.unit.conftest import Api
from tests.unit.files.test_worker import TEXT, event_for, fresh, new_file, owner, put

__all__ = ["owner"]  # the fixture, imported for its use below


@pytest.fixture(autouse=True)
def outbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))
    yield tmp_path / "outbox"


def invoke(client: Client, function: str, records: list[dict[str, Any]]) -> Any:
    return client.lambda_.invoke(function, {"Records": records}).payload


def test_the_handlers_are_registered_with_the_configured_batch() -> None:
    sources = {source.name: source for source in app.app.event_sources if hasattr(source, "queue")}
    assert set(sources) == {"process_upload_events", "process_dead_upload_events", "send_mail"}
    for source in sources.values():
        assert source.batch_size == settings().queue_batch_size == 10
        assert source.maximum_batching_window_in_seconds == settings().queue_batch_window_seconds == 1
        assert source.maximum_concurrency == batches.MAXIMUM_CONCURRENCY


def test_a_poison_upload_fails_alone_and_duplicates_count_once(
    client: Client, owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    good, poison, other = (new_file(owner, size=len(TEXT)) for _ in range(3))
    for item in (good, poison, other):
        put(item, TEXT)
    s3 = aws.client("s3")
    original = s3.get_object

    def get_object(**kwargs: Any) -> Any:
        if kwargs["Key"] == poison.object_key:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "GetObject")
        return original(**kwargs)

    monkeypatch.setattr(s3, "get_object", get_object)
    batch = [event_for(good), event_for(poison), event_for(good), event_for(other)]  # good twice: a duplicate
    assert invoke(client, "process_upload_events", batch) == {
        "batchItemFailures": [{"itemIdentifier": batch[1]["messageId"]}]
    }
    assert [fresh(item).status for item in (good, poison, other)] == ["completed", "pending_upload", "completed"]
    assert fresh(good).word_count == 9
    # the poison alone comes back (receive count 2) and, S3 answering again, is counted
    monkeypatch.setattr(s3, "get_object", original)
    assert invoke(client, "process_upload_events", [event_for(poison, receive_count=2)]) == {"batchItemFailures": []}
    assert (fresh(poison).status, fresh(poison).word_count) == ("completed", 9)


def test_a_poison_mail_job_fails_alone_and_a_redelivered_batch_sends_nothing_twice(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = (api.register(name).data["user"] for name in ("alice", "bob"))
    mailbox.delete(mailbox.queued())  # the verification emails
    for user in (alice, bob, alice):
        jobs.put("password_changed", user_id=user["id"])
    queued = mailbox.queued()
    original = senders._write_outbox

    def refuses_bob(letter: Any, *args: Any) -> None:
        if letter.to == "bob@example.com":
            raise ClientError({"Error": {"Code": "MessageRejected", "Message": "no"}}, "SendEmail")
        original(letter, *args)

    monkeypatch.setattr(senders, "_write_outbox", refuses_bob)
    batch = lambda_sqs_event(queued, "arn:aws:sqs:us-east-1:1:mail", "us-east-1")["Records"]
    [bobs] = [r["messageId"] for r in batch if bob["id"] in r["body"]]
    answer = invoke(api.client, "send_mail", batch)
    assert answer == {"batchItemFailures": [{"itemIdentifier": bobs}]}
    assert len(mailbox.outbox()) == 2
    assert invoke(api.client, "send_mail", batch) == answer  # SQS delivered the whole batch again
    assert len(mailbox.outbox()) == 2  # alice's two emails were not sent twice


def test_a_partial_batch_response_is_read_as_lambda_reads_it() -> None:
    batch = ["a", "b", "c"]
    assert failed_message_ids(None, batch) == set()
    assert failed_message_ids({"batchItemFailures": []}, batch) == set()
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, batch) == {"b"}
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, batch) == set(batch)
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": ""}]}, batch) == set(batch)
    assert failed_message_ids({"batchItemFailures": [{"id": "b"}]}, batch) == set(batch)


@pytest.fixture
def queue_with_dlq(aws_resources: dict[str, Any]) -> tuple[str, str]:
    """A queue whose messages return at once and go to its DLQ on the second receive."""
    sqs = aws.client("sqs")
    dlq = sqs.create_queue(QueueName="batch-dlq")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 2})
    queue = sqs.create_queue(QueueName="batch", Attributes={"VisibilityTimeout": "0", "RedrivePolicy": redrive})
    return queue["QueueUrl"], dlq


def test_the_runner_retries_the_poison_alone_into_the_dlq(queue_with_dlq: tuple[str, str]) -> None:
    queue, dlq = queue_with_dlq
    sqs = aws.client("sqs")
    for body in ["good-1", "good-2", "poison", "good-3", "good-4"]:
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    deliveries: list[list[str]] = []

    def handle(records: list[dict[str, Any]]) -> None:
        if records[0]["body"] == "poison":
            raise ValueError("cannot be handled")

    def handler(event: dict[str, Any], _: Any) -> Any:
        deliveries.append([r["body"] for r in event["Records"]])
        return batches.each_record(event["Records"], handle)

    poller = SqsPoller(queue, handler, name="t", batch_size=10, window_seconds=0, wait_seconds=0)
    while poller.poll_once():
        pass
    assert sorted(deliveries[0]) == ["good-1", "good-2", "good-3", "good-4", "poison"]
    assert deliveries[1:] == [["poison"]]  # retried alone, then redriven on the next receive
    assert poller.invocations == 2
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in dead] == ["poison"]


def test_the_runner_fills_a_batch_over_several_receives_within_the_window(aws_resources: dict[str, Any]) -> None:
    sqs = aws.client("sqs")
    queue = sqs.create_queue(QueueName="fill")["QueueUrl"]
    for start in (0, 10):
        sqs.send_message_batch(
            QueueUrl=queue, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, start + 10)]
        )
    sizes: list[int] = []

    def handler(event: dict[str, Any], _: Any) -> Any:
        sizes.append(len(event["Records"]))
        return {"batchItemFailures": []}

    poller = SqsPoller(queue, handler, name="t", batch_size=15, window_seconds=1, wait_seconds=0)
    while poller.poll_once():
        pass
    assert sizes == [15, 5]


def test_a_handler_that_raises_leaves_the_whole_batch(queue_with_dlq: tuple[str, str]) -> None:
    queue, dlq = queue_with_dlq
    aws.client("sqs").send_message(QueueUrl=queue, MessageBody="x")

    def handler(event: dict[str, Any], _: Any) -> Any:
        raise RuntimeError("crash before any answer")

    poller = SqsPoller(queue, handler, name="t", batch_size=10, window_seconds=0, wait_seconds=0)
    assert [poller.poll_once() for _ in range(3)] == [1, 1, 0]  # maxReceiveCount 2, then the DLQ
    assert [m["Body"] for m in aws.client("sqs").receive_message(QueueUrl=dlq)["Messages"]] == ["x"]


def test_the_local_stack_polls_every_sqs_handler_with_its_batch(aws_resources: dict[str, Any]) -> None:
    pollers = {p.name: p for p in sqs_pollers(app, aws_resources["queues"])}
    assert set(pollers) == {"process_upload_events", "process_dead_upload_events", "send_mail"}
    assert {(p.batch_size, p.window_seconds) for p in pollers.values()} == {(10, 1)}
    assert pollers["send_mail"].queue_url == aws_resources["queues"][settings().mail_queue]
