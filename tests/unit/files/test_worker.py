"""The upload worker: real S3 notifications and hand-built SQS records, good and bad."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from dataclasses import replace
from datetime import timedelta
from typing import IO, Any
from urllib.parse import quote

import pytest
import requests
from botocore.exceptions import ClientError

from chalicelib.accounts import accounts, tokens
from chalicelib.core import aws, clock, errors
from chalicelib.core.config import settings
from chalicelib.core.counters import status_key
from chalicelib.core.models import Activity, File, User
from chalicelib.files import upload_events, uploads, worker
from chalicelib.staff import stats
from local.runner import SqsPoller, lambda_sqs_event
from tests import documents
from tests.documents import docx_bytes

TEXT = b"The quick brown fox\njumps over\tthe lazy dog.\n"  # 9 words


@pytest.fixture
def owner(aws_resources: dict[str, Any]) -> accounts.Principal:
    user = accounts.create_user("writer", "writer@example.com", "correct horse")
    user.update(actions=[User.has_paid.set(True)])
    claims = tokens.Claims(user.id, clock.new_id(), tokens.ACCESS, clock.now() + timedelta(minutes=5))
    return accounts.Principal(user=user, claims=claims)


@pytest.fixture
def queue_url(aws_resources: dict[str, Any]) -> str:
    return aws_resources["queues"][settings().upload_queue]


def new_file(owner: accounts.Principal, filename: str = "notes.txt", size: int = 10) -> File:
    answer = uploads.request_upload(owner, {"filename": filename, "size": size})
    return File.get(answer["file"]["id"])


def put(item: File, body: bytes) -> None:
    aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=item.object_key, Body=body)


def drain(queue_url: str) -> int:
    """Hand every queued message to the worker as Lambda would; returns how many."""
    sqs = aws.client("sqs")
    handled = 0
    while True:
        reply = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, AttributeNames=["All"])
        messages = reply.get("Messages", [])
        if not messages:
            return handled
        worker.handle_records(lambda_sqs_event(messages, "arn:aws:sqs:us-east-1:1:q", "us-east-1")["Records"])
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        handled += 1


def s3_body(key: str, bucket: str | None = None, **extra: Any) -> str:
    event = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Post",
        "s3": {"bucket": {"name": bucket or settings().upload_bucket}, "object": {"key": quote(key, safe="")}},
    }
    return json.dumps({"Records": [event], **extra})


def record(body: str, receive_count: int = 1) -> dict[str, Any]:
    """One SQS record as Lambda delivers it, with its own message id."""
    return {
        "messageId": clock.new_id(),
        "receiptHandle": clock.new_id(),
        "body": body,
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
    }


def event_for(item: File, receive_count: int = 1) -> dict[str, Any]:
    return record(s3_body(item.object_key), receive_count)


def counters() -> dict[str, Any]:
    names = [status_key("files", s) for s in ("pending_upload", "processing", "completed", "failed")]
    return stats.values([*names, "words"])


def actions(user_id: str) -> list[str]:
    return [entry.action for entry in Activity.query(user_id)]


def fresh(item: File) -> File:
    return File.get(item.id, consistent_read=True)


# --- the happy paths, through moto's real notifications ----------------------------------


def test_txt_upload_is_counted_from_the_real_s3_notification(owner: accounts.Principal, queue_url: str) -> None:
    item = new_file(owner, size=len(TEXT))
    put(item, TEXT)
    assert drain(queue_url) == 2  # bootstrap's s3:TestEvent, then the %2F-encoded ObjectCreated
    done = fresh(item)
    assert (done.status, done.word_count, done.size) == ("completed", 9, len(TEXT))
    assert done.error is None and done.attempt is None
    assert done.status_day == f"completed#{done.created_at[:10]}"
    assert actions(owner.user_id)[-3:] == ["file_upload_requested", "file_uploaded", "file_processed"]
    assert counters() == {
        "files#pending_upload": 0,
        "files#processing": 0,
        "files#completed": 1,
        "files#failed": 0,
        "words": 9,
    }


def test_docx_upload_is_counted(owner: accounts.Principal, queue_url: str) -> None:
    content = docx_bytes("Hello world from", "a Word document")
    item = new_file(owner, "report.docx", len(content))
    put(item, content)
    drain(queue_url)
    assert (fresh(item).status, fresh(item).word_count) == ("completed", 6)


def test_real_size_replaces_the_declared_one(owner: accounts.Principal, queue_url: str) -> None:
    item = new_file(owner, size=9999)
    put(item, b"two words")
    drain(queue_url)
    assert (fresh(item).size, fresh(item).word_count) == (9, 2)


# --- message shapes -----------------------------------------------------------------------


def test_s3_test_event_is_skipped(owner: accounts.Principal) -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": settings().upload_bucket})
    worker.handle_records([record(body)])
    assert counters()["files#processing"] == 0


@pytest.mark.parametrize("body", ["not json", "[]", "{}", '{"Records": "x"}', '{"Records": [{"eventName": 1}]}'])
def test_malformed_messages_are_consumed_without_effect(owner: accounts.Principal, body: str) -> None:
    item = new_file(owner)
    worker.handle_records([record(body)])
    assert fresh(item).status == "pending_upload"


def test_keys_are_url_decoded_plus_and_percent(owner: accounts.Principal) -> None:
    item = new_file(owner)
    put(item, b"one two")
    encoded = item.object_key.replace("/", "%2F")
    body = json.loads(s3_body(item.object_key))
    body["Records"][0]["s3"]["object"]["key"] = encoded
    worker.handle_records([record(json.dumps(body))])
    assert fresh(item).word_count == 2


@pytest.mark.parametrize(
    "key",
    [
        "uploads/0123456789abcdef0123456789abcdef/0123456789abcdef0123456789abcdef.txt",  # no such file
        "elsewhere/notes.txt",
        "uploads/../../etc/passwd",
    ],
)
def test_unknown_keys_are_dropped(owner: accounts.Principal, key: str) -> None:
    worker.handle_records([record(s3_body(key))])
    assert counters()["files#processing"] == 0


def test_a_key_under_another_users_prefix_is_not_that_file(owner: accounts.Principal) -> None:
    item = new_file(owner)
    forged = item.object_key.replace(owner.user_id, "f" * 32)
    aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=forged, Body=b"x y z")
    worker.handle_records([record(s3_body(forged))])
    assert fresh(item).status == "pending_upload"


def test_events_of_another_bucket_or_kind_are_ignored(owner: accounts.Principal) -> None:
    item = new_file(owner)
    put(item, b"a b")
    worker.handle_records([record(s3_body(item.object_key, bucket="someone-elses-bucket"))])
    removed = json.loads(s3_body(item.object_key))
    removed["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    worker.handle_records([record(json.dumps(removed))])
    assert fresh(item).status == "pending_upload"


# --- idempotency ----------------------------------------------------------------------------


def test_duplicate_events_count_once(owner: accounts.Principal) -> None:
    """moto sends two events for a multipart upload; SQS may deliver any message twice."""
    item = new_file(owner)
    put(item, TEXT)
    worker.handle_records([event_for(item)])
    worker.handle_records([event_for(item)])
    worker.handle_records([event_for(item, receive_count=2)])
    assert fresh(item).word_count == 9
    assert counters()["words"] == 9
    assert actions(owner.user_id).count("file_processed") == 1
    assert actions(owner.user_id).count("file_uploaded") == 1


def test_out_of_order_events_of_several_files(owner: accounts.Principal) -> None:
    first, second = new_file(owner, "a.txt"), new_file(owner, "b.txt")
    put(first, b"one")
    put(second, b"one two")
    worker.handle_records([event_for(second)])
    worker.handle_records([event_for(first)])
    worker.handle_records([event_for(second)])
    assert (fresh(first).word_count, fresh(second).word_count) == (1, 2)
    assert counters()["words"] == 3


def test_event_before_the_object_exists_fails_the_file(owner: accounts.Principal) -> None:
    item = new_file(owner)
    worker.handle_records([event_for(item)])
    assert (fresh(item).status, fresh(item).error) == ("failed", "The uploaded file is missing.")


# --- what the object contains ---------------------------------------------------------------


def test_oversize_object_fails_and_is_deleted(owner: accounts.Principal, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto ignores the POST policy's content-length-range: the worker enforces it."""
    monkeypatch.setattr(worker, "settings", lambda: replace(settings(), max_upload_bytes=16))
    item = new_file(owner)
    put(item, b"x " * 20)
    worker.handle_records([event_for(item)])
    assert (fresh(item).status, fresh(item).error) == ("failed", "The file is larger than the 16-byte limit.")
    assert uploads.stored_size(item) is None
    assert counters()["files#failed"] == 1
    assert actions(owner.user_id)[-1] == "file_processing_failed"


def test_empty_object_fails(owner: accounts.Principal) -> None:
    item = new_file(owner)
    put(item, b"")
    worker.handle_records([event_for(item)])
    assert (fresh(item).status, fresh(item).error) == ("failed", "The file is empty.")


@pytest.mark.parametrize(
    "content",
    [b"\x89PNG\r\n\x1a\n" + bytes(range(256)), b"%PDF-1.7\n%\xe2\xe3", b"\x7fELF\x02\x01\x01" + b"\0" * 64],
)
def test_binary_txt_fails(owner: accounts.Principal, content: bytes) -> None:
    item = new_file(owner)
    put(item, content)
    worker.handle_records([event_for(item)])
    assert (fresh(item).status, fresh(item).error) == ("failed", "The file is not plain text.")
    assert fresh(item).word_count is None


def test_binary_txt_without_a_known_signature_fails_in_the_counter(owner: accounts.Principal) -> None:
    item = new_file(owner)
    put(item, bytes(range(256)) * 4)
    worker.handle_records([event_for(item)])
    assert fresh(item).status == "failed"
    assert fresh(item).error


def test_text_renamed_docx_fails(owner: accounts.Principal) -> None:
    item = new_file(owner, "fake.docx")
    put(item, b"just some text, not a zip")
    worker.handle_records([event_for(item)])
    assert (fresh(item).status, fresh(item).error) == ("failed", "The file is not a Word document (.docx).")


def test_zip_that_is_no_word_document_fails(owner: accounts.Principal) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("hello.txt", "hello")
    item = new_file(owner, "archive.docx")
    put(item, buffer.getvalue())
    worker.handle_records([event_for(item)])
    assert fresh(item).status == "failed"
    assert fresh(item).error


def _sample_docx() -> bytes:
    return documents.docx_of_xml(documents.body("<w:p><w:r><w:t>" + "words to count " * 500 + "</w:t></w:r></w:p>"))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (lambda: documents.corrupt_deflate(_sample_docx()), "damaged"),
        (lambda: documents.encrypted(_sample_docx()), "encrypted"),
        (lambda: documents.truncated(_sample_docx()), "not a zip"),
        (lambda: documents.bad_crc(_sample_docx()), "damaged"),
        (lambda: documents.unknown_compression(_sample_docx()), "compressed in a way"),
        (
            lambda: documents.docx_of_xml(documents.nested_tags(1 << 20), compression=zipfile.ZIP_STORED),
            "nested too deeply",
        ),
    ],
    ids=["deflate", "encrypted", "truncated", "crc", "method", "nesting"],
)
def test_unreadable_docx_fails_on_the_first_receive_and_a_redelivery_changes_nothing(
    owner: accounts.Principal, content: Any, reason: str
) -> None:
    """zlib.error and RuntimeError used to escape: three receives, then the DLQ (issue 14)."""
    item = new_file(owner, "broken.docx")
    put(item, content())
    worker.handle_records([event_for(item)])
    failed = fresh(item)
    assert failed.status == "failed" and reason in failed.error
    worker.handle_records([event_for(item, receive_count=2)])  # SQS delivers it again
    assert fresh(item).updated_at == failed.updated_at
    assert actions(owner.user_id).count("file_processing_failed") == 1


# --- counted is stored -------------------------------------------------------------------


def versions(item: File) -> list[str]:
    reply = aws.client("s3").list_object_versions(Bucket=settings().upload_bucket, Prefix=item.object_key)
    return [version["VersionId"] for version in reply.get("Versions", [])]


def downloaded(item: File) -> bytes:
    return requests.get(uploads.download_url(fresh(item)), timeout=5).content


def test_a_second_upload_after_counting_changes_neither_the_bytes_nor_the_count(
    owner: accounts.Principal, queue_url: str
) -> None:
    item = new_file(owner)
    put(item, b"one two three")
    drain(queue_url)
    counted = fresh(item)
    assert (counted.status, counted.word_count) == ("completed", 3)
    assert versions(item) == [counted.version_id]
    put(item, b"a replacement of many more words than were counted")  # the same POST, minutes later
    drain(queue_url)
    after = fresh(item)
    assert (after.status, after.word_count, after.size, after.version_id) == ("completed", 3, 13, counted.version_id)
    assert downloaded(item) == b"one two three"
    assert versions(item) == [counted.version_id]  # the stray version is gone, the counted one current
    assert counters()["words"] == 3


def test_a_file_counted_without_a_recorded_version_keeps_its_object(owner: accounts.Principal) -> None:
    """Files counted before versions were recorded: a late event must not delete their bytes."""
    item = new_file(owner)
    put(item, b"counted long ago")
    worker.handle_records([event_for(item)])
    fresh(item).update(actions=[File.version_id.remove()])
    worker.handle_records([event_for(item)])
    assert len(versions(item)) == 1
    assert downloaded(item) == b"counted long ago"


def test_a_replacement_before_counting_is_what_gets_counted(owner: accounts.Principal, queue_url: str) -> None:
    item = new_file(owner)
    put(item, b"first")
    put(item, b"the second upload")
    drain(queue_url)
    done = fresh(item)
    assert done.word_count == 3
    assert downloaded(item) == b"the second upload"
    assert versions(item) == [done.version_id]


def test_a_second_upload_while_the_first_is_counted_is_removed_by_its_own_event(
    owner: accounts.Principal, atomic_dynamodb: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real threads: the counting run lists no versions, so the stray's own event must
    find the claimed version recorded and delete everything else."""
    item = new_file(owner)
    put(item, b"one two three")
    counting, release = threading.Event(), threading.Event()
    real = worker._count_words

    def held(spool: IO[bytes], kind: str) -> int:
        counting.set()
        assert release.wait(30)
        return real(spool, kind)

    monkeypatch.setattr(worker, "_count_words", held)
    first = threading.Thread(target=worker.handle_records, args=([event_for(item)],))
    first.start()
    try:
        assert counting.wait(30)
        put(item, b"a replacement of many more words than were counted")
        worker.handle_records([event_for(item)])  # the second POST's event, mid-count
        assert versions(item) == [fresh(item).version_id]
    finally:
        release.set()
        first.join(30)
    done = fresh(item)
    assert (done.status, done.word_count, done.size) == ("completed", 3, 13)
    assert versions(item) == [done.version_id]
    assert downloaded(item) == b"one two three"


def _race_for_the_claim(item: File, second: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs of the file's event that both find it waiting: the first holds a GET of
    the version stored now, the second one of `second`, stored in between; both claim at once."""
    real_claim = worker._claim
    arrived, together = threading.Event(), threading.Barrier(2, timeout=30)

    def claim_together(file: File, version: str | None) -> bool:
        arrived.set()
        together.wait()
        return real_claim(file, version)

    monkeypatch.setattr(worker, "_claim", claim_together)
    runs = [threading.Thread(target=worker.handle_records, args=([event_for(item)],)) for _ in range(2)]
    runs[0].start()
    assert arrived.wait(30)
    put(item, second)
    runs[1].start()
    for run in runs:
        run.join(30)
    monkeypatch.setattr(worker, "_claim", real_claim)


def test_two_events_racing_for_the_claim_leave_one_counted_version(
    owner: accounts.Principal, atomic_dynamodb: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two POSTs whose events both find the file waiting, each run holding a GET of a
    different version: one claim wins, the loser deletes every version but the winner's."""
    contents = {2: b"first upload", 4: b"the second upload here"}
    for _ in range(3):
        item = new_file(owner)
        put(item, contents[2])
        _race_for_the_claim(item, contents[4], monkeypatch)
        done = fresh(item)
        assert done.status == "completed"
        assert versions(item) == [done.version_id]
        assert downloaded(item) == contents[int(done.word_count)]
        entries = [e.action for e in Activity.query(owner.user_id) if e.metadata.get("file_id") == item.id]
        assert (entries.count("file_uploaded"), entries.count("file_processed")) == (1, 1)
    assert counters()["files#completed"] == 3 and counters()["files#processing"] == 0
    assert counters()["words"] == sum(int(f.word_count or 0) for f in File.by_user.query(owner.user_id))


def test_a_takeover_counts_the_claimed_version_not_a_later_one(
    owner: accounts.Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = new_file(owner)
    put(item, TEXT)
    _crash_once(monkeypatch)
    with pytest.raises(ClientError):
        worker.handle_records([event_for(item)])
    claimed = fresh(item).version_id
    assert claimed
    put(item, b"a later upload")  # its event not delivered yet
    worker.handle_records([event_for(item, receive_count=2)])  # the crashed message comes back
    done = fresh(item)
    assert (done.status, done.word_count, done.version_id) == ("completed", 9, claimed)
    worker.handle_records([event_for(item)])  # the later upload's own event
    assert versions(item) == [claimed]
    assert downloaded(item) == TEXT


def test_a_corrected_upload_to_a_failed_file_stays_for_a_reprocess(owner: accounts.Principal) -> None:
    """Only a counted file binds its version: a failed one keeps what its owner POSTs next,
    and a superuser's reprocess counts that."""
    item = new_file(owner, "report.docx")
    put(item, b"not a word document")
    worker.handle_records([event_for(item)])
    failed = fresh(item)
    assert (failed.status, failed.version_id) == ("failed", None)
    corrected = docx_bytes("a real document")
    put(item, corrected)
    worker.handle_records([event_for(item)])  # the corrected POST's own event
    assert len(versions(item)) == 2 and fresh(item).status == "failed"
    uploads.reprocess(item.id, actor_id="f" * 32)
    worker.handle_records([record(upload_events.reprocess_body(item.object_key, fresh(item).attempt))])
    done = fresh(item)
    assert (done.status, done.word_count) == ("completed", 3)
    worker.handle_records([event_for(item)])  # any later event now finds the counted version
    assert versions(item) == [done.version_id]
    assert downloaded(item) == corrected


def test_events_of_a_deleted_file_delete_the_late_upload(owner: accounts.Principal, queue_url: str) -> None:
    item = new_file(owner)
    uploads.delete_for_user(owner.user_id, item.id)
    put(item, b"uploaded after the delete")
    drain(queue_url)
    assert fresh(item).status == "deleted"
    assert versions(item) == []
    assert "file_uploaded" not in actions(owner.user_id)


def _race_delete_and_worker(owner: accounts.Principal, item: File) -> str:
    """The owner's delete and the worker's run of the upload's event, started together;
    returns what the delete answered."""
    start, answers = threading.Barrier(2), []

    def delete() -> None:
        start.wait()
        try:
            uploads.delete_for_user(owner.user_id, item.id)
            answers.append("deleted")
        except errors.Conflict:
            answers.append("busy")

    def process() -> None:
        start.wait()
        worker.process_object(item.object_key, upload_events.Message([item.object_key], 1, None))

    threads = [threading.Thread(target=delete), threading.Thread(target=process)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    [answer] = answers
    return answer


def test_a_delete_racing_the_worker_leaves_one_consistent_outcome(
    owner: accounts.Principal, atomic_dynamodb: None
) -> None:
    """Real threads. Either the delete wins (the claim then fails: nothing counted, no
    object; or the worker had finished and a counted file is deleted), or it answers 409
    and the file completes: never a deleted file that is counted later or left processing."""
    for _ in range(6):
        item = new_file(owner)
        put(item, b"racing words")
        answer = _race_delete_and_worker(owner, item)
        final = fresh(item)
        if answer == "busy":
            assert (final.status, final.word_count, versions(item)) == ("completed", 2, [final.version_id])
        else:
            assert (final.status, versions(item)) == ("deleted", [])
            entries = [e.action for e in Activity.query(owner.user_id) if e.metadata.get("file_id") == item.id]
            assert entries[-1] == "file_deleted"
    statuses = [each.status for each in File.by_user.query(owner.user_id)]
    deleted = stats.values([status_key("files", "deleted")])[status_key("files", "deleted")]
    assert (counters()["files#completed"], deleted) == (statuses.count("completed"), statuses.count("deleted"))
    assert counters()["files#processing"] == counters()["files#pending_upload"] == 0


# --- crashes, retries, dead letters ---------------------------------------------------------


def _crash_once(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls: list[int] = []
    real = worker._count_words

    def flaky(spool: IO[bytes], kind: str) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "slow down"}}, "GetObject")
        return real(spool, kind)

    monkeypatch.setattr(worker, "_count_words", flaky)
    return calls


def test_a_crash_leaves_the_message_for_a_retry_that_counts_once(
    owner: accounts.Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = new_file(owner)
    put(item, TEXT)
    calls = _crash_once(monkeypatch)
    with pytest.raises(ClientError):
        worker.handle_records([event_for(item)])
    stuck = fresh(item)
    assert stuck.status == "processing" and stuck.attempt

    worker.handle_records([event_for(item)])  # a duplicate first delivery: not ours
    assert fresh(item).attempt == stuck.attempt

    worker.handle_records([event_for(item, receive_count=2)])  # the crashed message comes back
    done = fresh(item)
    assert (done.status, done.word_count, len(calls)) == ("completed", 9, 2)
    assert counters()["words"] == 9
    assert counters()["files#processing"] == 0
    assert actions(owner.user_id).count("file_uploaded") == 1


def test_a_superseded_run_cannot_overwrite_the_result(
    owner: accounts.Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow run whose message timed out and was taken over must not write afterwards."""
    item = new_file(owner)
    put(item, TEXT)
    real = worker._count_words

    def slow_then_taken_over(spool: IO[bytes], kind: str) -> int:
        monkeypatch.setattr(worker, "_count_words", real)
        worker.handle_records([event_for(item, receive_count=2)])  # the redelivery finishes first
        return 12345

    monkeypatch.setattr(worker, "_count_words", slow_then_taken_over)
    worker.handle_records([event_for(item)])
    assert fresh(item).word_count == 9
    assert counters()["words"] == 9
    assert actions(owner.user_id).count("file_processed") == 1


def test_a_run_whose_file_was_taken_over_meanwhile_writes_nothing(
    owner: accounts.Principal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the latest owner (attempt id) may write the result, even before it finishes."""
    item = new_file(owner)
    put(item, TEXT)

    def taken_over_meanwhile(spool: IO[bytes], kind: str) -> int:
        current = fresh(item)
        assert worker._claim(current, current.version_id)  # what a redelivered message's run does
        return 12345

    monkeypatch.setattr(worker, "_count_words", taken_over_meanwhile)
    worker.handle_records([event_for(item)])
    assert (fresh(item).status, counters()["words"]) == ("processing", 0)
    monkeypatch.undo()
    worker.handle_records([event_for(item, receive_count=3)])
    assert (fresh(item).word_count, counters()["words"]) == (9, 9)


def test_aws_errors_propagate_so_sqs_retries(owner: accounts.Principal, monkeypatch: pytest.MonkeyPatch) -> None:
    item = new_file(owner)

    def throttled(**_: Any) -> Any:
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "later"}}, "GetObject")

    monkeypatch.setattr(aws.client("s3"), "get_object", throttled)
    with pytest.raises(ClientError):
        worker.handle_records([event_for(item)])
    assert fresh(item).status == "pending_upload"  # the GET comes before the claim: nothing changed


def test_dead_letter_marks_a_stuck_file_failed(owner: accounts.Principal, monkeypatch: pytest.MonkeyPatch) -> None:
    item = new_file(owner)
    put(item, TEXT)
    _crash_once(monkeypatch)
    with pytest.raises(ClientError):
        worker.handle_records([event_for(item)])
    worker.handle_dead_letters([event_for(item, receive_count=1)])
    failed = fresh(item)
    assert (failed.status, failed.error, failed.attempt) == ("failed", "Processing failed repeatedly.", None)
    assert failed.version_id is None  # the claim recorded one; a failed file binds none
    assert actions(owner.user_id)[-1] == "file_processing_failed"
    assert counters()["files#failed"] == 1 and counters()["files#processing"] == 0


def test_dead_letter_leaves_finished_files_alone(owner: accounts.Principal) -> None:
    item = new_file(owner)
    put(item, TEXT)
    worker.handle_records([event_for(item)])
    worker.handle_dead_letters([event_for(item)])
    worker.handle_dead_letters([record("garbage")])
    assert fresh(item).status == "completed"


def test_dead_letter_of_a_stray_deletes_it_so_the_counted_version_stays_current(owner: accounts.Principal) -> None:
    """Left current, a stray would make the counted version noncurrent, which expires."""
    item = new_file(owner)
    put(item, b"one two")
    worker.handle_records([event_for(item)])
    put(item, b"a stray whose own event kept failing")
    worker.handle_dead_letters([event_for(item, receive_count=3)])
    done = fresh(item)
    assert (done.status, done.word_count, versions(item)) == ("completed", 2, [done.version_id])
    assert downloaded(item) == b"one two"


def test_redrive_after_max_receives_reaches_the_dead_letter_handler(
    owner: accounts.Principal, queue_url: str, aws_resources: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real queue pair: three failed receives move the message to the DLQ."""
    sqs = aws.client("sqs")
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "0"})
    item = new_file(owner)
    put(item, TEXT)

    def always_fails(spool: IO[bytes], kind: str) -> int:
        raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}}, "GetObject")

    monkeypatch.setattr(worker, "_count_words", always_fails)
    poller = SqsPoller(queue_url, lambda event, _: worker.handle_records(event["Records"]), name="t", wait_seconds=0)
    while poller.poll_once():
        pass
    assert fresh(item).status == "processing"

    dead_letters = aws_resources["queues"][settings().upload_dead_letter_queue]
    dlq = SqsPoller(
        dead_letters, lambda event, _: worker.handle_dead_letters(event["Records"]), name="d", wait_seconds=0
    )
    assert dlq.poll_once() == 1
    assert (fresh(item).status, fresh(item).error) == ("failed", "Processing failed repeatedly.")
