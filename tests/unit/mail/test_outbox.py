"""The outbox: a job exists exactly when its change committed, and the stream relays every one.

The stream mapping is played by `local.runner.StreamPoller` on moto's stream, as `make run` plays it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import app
from chalicelib.core import aws
from chalicelib.core.config import settings
from chalicelib.core.models import Outbox
from chalicelib.mail import jobs
from local import bootstrap
from local.runner import Checkpoints, StreamPoller, stream_pollers
from tests import mailbox
from tests.unit.conftest import Api


@pytest.fixture(autouse=True)
def outbox_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))


def _poller(checkpoints: Checkpoints, handler: Any = None) -> StreamPoller:
    stream = bootstrap.stream_arns()[Outbox.Meta.table_name]
    (poller,) = stream_pollers(app, {Outbox.Meta.table_name: stream}, checkpoints)
    poller.window_seconds, poller.retry_seconds = 0, 0
    if handler is not None:
        poller.handler = handler
    return poller


def _queued_jobs() -> list[dict[str, Any]]:
    """The mail queue's messages as jobs, without relaying first; taken off the queue, so a later
    call sees only what was queued since (not what comes back after the visibility timeout)."""
    messages = mailbox.received()
    mailbox.delete(messages)
    return [json.loads(message["Body"]) for message in messages]


def test_the_relay_is_fed_by_the_outbox_stream_with_the_configured_batch() -> None:
    (source,) = [s for s in app.app.event_sources if hasattr(s, "stream_arn")]
    assert source.name == "relay_mail" and f"table/{Outbox.Meta.table_name}/" in source.stream_arn
    assert (source.batch_size, source.starting_position) == (settings().queue_batch_size, "TRIM_HORIZON")


def test_a_refused_change_leaves_no_job_and_a_committed_one_exactly_one(api: Api) -> None:
    assert api.register("alice").status_code == 201
    assert api.register("alice", email="other@example.com").status_code == 409  # its transaction failed
    mailbox.relay()
    assert [job["kind"] for job in _queued_jobs()] == ["verify"]


def test_jobs_written_while_nothing_relays_arrive_after_a_restart(api: Api, tmp_path: Path) -> None:
    """A relay that died after some batches: a new one with the same checkpoints relays what
    came later, and nothing twice."""
    checkpoints = tmp_path / "checkpoints.json"
    api.register("alice")
    _poller(Checkpoints(checkpoints)).drain()
    api.register("bob")  # committed while the relay is down
    api.register("carol")
    _poller(Checkpoints(checkpoints)).drain()
    assert sorted(job["kind"] for job in _queued_jobs()) == ["verify"] * 3
    _poller(Checkpoints(checkpoints)).drain()
    assert _queued_jobs() == []


def test_sqs_refusing_part_of_a_batch_retries_from_the_first_job_not_queued(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [api.register(name).data["user"]["id"] for name in ("alice", "bob", "carol")]
    sqs = aws.client("sqs")
    original, sent = sqs.send_message_batch, []

    def send_message_batch(**kwargs: Any) -> Any:
        entries = kwargs["Entries"]
        sent.append(len(entries))
        if len(sent) > 1:
            return original(**kwargs)
        reply = original(QueueUrl=kwargs["QueueUrl"], Entries=entries[:1])  # the first taken, the rest refused
        refused = [{"Id": entry["Id"], "SenderFault": False, "Code": "InternalError"} for entry in entries[1:]]
        return {**reply, "Failed": refused}

    monkeypatch.setattr(sqs, "send_message_batch", send_message_batch)
    answers: list[Any] = []

    def relay_mail(event: dict[str, Any], context: Any) -> Any:
        answers.append(app.relay_mail(event, context))
        return answers[-1]

    _poller(Checkpoints(), relay_mail).drain()
    assert len(answers[0]["batchItemFailures"]) == 1 and answers[1] == {"batchItemFailures": []}
    assert sent == [3, 2]  # retried from the second job on
    assert sorted(job["user_id"] for job in _queued_jobs()) == sorted(users)  # each once


def test_sqs_down_fails_the_batch_and_nothing_is_skipped(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    api.register("alice")
    sqs = aws.client("sqs")
    original = sqs.send_message_batch
    down = [True]

    def send_message_batch(**kwargs: Any) -> Any:
        if down[0]:
            down[0] = False
            raise ClientError({"Error": {"Code": "ServiceUnavailable", "Message": "down"}}, "SendMessageBatch")
        return original(**kwargs)

    monkeypatch.setattr(sqs, "send_message_batch", send_message_batch)
    poller = _poller(Checkpoints())
    poller.drain()
    assert poller.invocations == 2  # failed once, then succeeded from the same record
    assert [job["kind"] for job in _queued_jobs()] == ["verify"]


def test_a_handler_that_raises_is_retried_from_the_batch_start_and_a_foreign_identifier_means_all(
    api: Api,
) -> None:
    api.register("alice")
    api.register("bob")
    seen: list[list[str]] = []
    answers: list[Any] = [RuntimeError("crash"), {"batchItemFailures": [{"itemIdentifier": "no such record"}]}, None]

    def handler(event: dict[str, Any], context: Any) -> Any:
        seen.append([record["dynamodb"]["SequenceNumber"] for record in event["Records"]])
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    _poller(Checkpoints(), handler).drain()
    assert len(seen) == 3 and seen[0] == seen[1] == seen[2] and len(seen[0]) == 2


def test_only_new_items_reach_the_relay(api: Api) -> None:
    """The mapping's filter (INSERT only): an item's removal (its TTL's, here a delete) is no job."""
    api.register("alice")
    (inserted,) = _stream_records()
    Outbox(inserted["dynamodb"]["Keys"]["id"]["S"]).delete()
    assert [record["eventName"] for record in _stream_records()] == ["INSERT", "REMOVE"]
    seen: list[Any] = []
    _poller(Checkpoints(), lambda event, context: seen.append(event)).drain()
    assert [record["eventName"] for event in seen for record in event["Records"]] == ["INSERT"]


def _stream_records() -> list[dict[str, Any]]:
    """Every record of the outbox's stream (one shard here)."""
    streams = aws.client("dynamodbstreams")
    stream = bootstrap.stream_arns()[Outbox.Meta.table_name]
    shard = streams.describe_stream(StreamArn=stream)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    return list(streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"])


def test_a_record_that_holds_no_job_is_passed_over() -> None:
    garbage = {"eventName": "INSERT", "dynamodb": {"SequenceNumber": "1", "NewImage": {"id": {"S": "x"}}}}
    assert jobs.relay([garbage]) == {"batchItemFailures": []}


def test_a_checkpoint_that_left_the_stream_reads_from_the_oldest_record_kept(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack started again after the stream's 24 hours: its checkpoint names a trimmed record."""
    checkpoints = tmp_path / "checkpoints.json"
    api.register("alice")
    _poller(Checkpoints(checkpoints)).drain()
    api.register("bob")
    (trimmed,) = json.loads(checkpoints.read_text()).values()
    streams = aws.client("dynamodbstreams")
    original = streams.get_shard_iterator

    def get_shard_iterator(**kwargs: Any) -> Any:
        if kwargs.get("SequenceNumber") == trimmed:
            error = {"Error": {"Code": "TrimmedDataAccessException", "Message": "trimmed"}}
            raise streams.exceptions.TrimmedDataAccessException(error, "GetShardIterator")
        return original(**kwargs)

    monkeypatch.setattr(streams, "get_shard_iterator", get_shard_iterator)
    _poller(Checkpoints(checkpoints)).drain()
    assert sorted(job["kind"] for job in _queued_jobs()) == ["verify"] * 3  # alice's again: dedupe keys hold
