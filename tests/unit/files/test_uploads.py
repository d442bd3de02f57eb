"""POST /api/upload/, GET /api/files/ and /{id}/, and the superuser's reprocess."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from chalicelib.core import aws, clock, errors
from chalicelib.core.config import settings
from chalicelib.core.models import Activity, File, User
from chalicelib.files import upload_events, uploads, worker
from infra import resources
from tests.unit.conftest import Api

MAX = settings().max_upload_bytes


def paid(api: Api, username: str = "alice") -> tuple[str, str]:
    """A registered, logged-in user whose payment went through; (token, user id)."""
    token = api.signed_up(username)
    user_id = api.call("GET", "/api/me/", token=token).data["user"]["id"]
    User(user_id).update(actions=[User.has_paid.set(True)])
    return token, user_id


def ask(api: Api, token: str, filename: str = "notes.txt", size: int = 11, **extra: Any) -> Any:
    return api.call("POST", "/api/upload/", {"filename": filename, "size": size, **extra}, token=token)


def policy_of(answer: dict[str, Any]) -> dict[str, Any]:
    return json.loads(base64.b64decode(answer["upload"]["fields"]["policy"]))


def code(response: Any) -> str:
    return response.data["error"]["code"]


def store(file_id: str, body: bytes = b"some words here") -> File:
    item = File.get(file_id)
    aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=item.object_key, Body=body)
    return item


# --- requesting an upload ------------------------------------------------------------------


def test_unpaid_user_gets_402_and_no_file(api: Api) -> None:
    token = api.signed_up()
    response = ask(api, token)
    assert response.status_code == 402
    assert code(response) == "payment_required"
    assert api.call("GET", "/api/files/", token=token).data == {"items": [], "next_cursor": None}


def test_upload_requires_a_token(api: Api) -> None:
    assert api.call("POST", "/api/upload/", {"filename": "a.txt", "size": 1}).status_code == 401


def test_txt_upload_answers_the_file_and_a_presigned_post(api: Api) -> None:
    token, user_id = paid(api)
    response = ask(api, token, "notes.txt", 11, content_type="text/plain")
    assert response.status_code == 201, response.data
    file, upload = response.data["file"], response.data["upload"]
    assert set(file) == {"id", "filename", "size", "status", "word_count", "error", "created_at", "updated_at"}
    assert (file["filename"], file["size"], file["status"]) == ("notes.txt", 11, "pending_upload")
    assert file["word_count"] is None and file["error"] is None
    assert len(file["id"]) == 32
    assert set(upload) == {"url", "fields", "expires_at", "max_bytes"}
    assert upload["max_bytes"] == MAX
    key = f"uploads/{user_id}/{file['id']}.txt"
    fields = upload["fields"]
    assert fields["key"] == key
    assert fields["Content-Type"] == "text/plain"
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert fields["x-amz-credential"].endswith("/us-east-1/s3/aws4_request")
    assert {"x-amz-date", "x-amz-signature", "policy"} <= set(fields)
    assert "AWSAccessKeyId" not in fields and "signature" not in fields  # no SigV2


def test_policy_pins_key_size_type_and_expiry(api: Api) -> None:
    token, _ = paid(api)
    before = clock.now()
    answer = ask(api, token, "notes.txt", 11).data
    policy = policy_of(answer)
    conditions = policy["conditions"]
    fields = answer["upload"]["fields"]
    assert {"bucket": settings().upload_bucket} in conditions
    assert {"key": fields["key"]} in conditions  # exact, not starts-with
    assert not [c for c in conditions if isinstance(c, list) and c[0] == "starts-with"]
    assert ["content-length-range", 1, MAX] in conditions
    assert {"Content-Type": "text/plain"} in conditions
    assert {"x-amz-algorithm": "AWS4-HMAC-SHA256"} in conditions
    assert {"x-amz-credential": fields["x-amz-credential"]} in conditions
    expiration = clock.parse_iso(policy["expiration"].replace("Z", ".000Z"))
    lifetime = timedelta(seconds=settings().upload_url_seconds)
    assert before + lifetime - timedelta(seconds=2) <= expiration <= before + lifetime + timedelta(seconds=2)
    assert abs(clock.parse_iso(answer["upload"]["expires_at"]) - expiration) < timedelta(seconds=2)


def test_docx_gets_the_word_mime_type_whatever_the_client_says(api: Api) -> None:
    token, _ = paid(api)
    answer = ask(api, token, "Report.DOCX", 2000, content_type="image/png").data
    assert answer["upload"]["fields"]["key"].endswith(".docx")
    assert answer["upload"]["fields"]["Content-Type"] == uploads.DOCX_MIME
    assert {"Content-Type": uploads.DOCX_MIME} in policy_of(answer)["conditions"]


def test_presigned_post_stores_the_object_and_notifies_the_queue(api: Api, aws_resources: dict[str, Any]) -> None:
    token, _ = paid(api)
    upload = ask(api, token, "notes.txt", 11).data["upload"]
    reply = requests.post(
        upload["url"], data=upload["fields"], files={"file": ("notes.txt", b"hello world")}, timeout=5
    )
    assert reply.status_code == 204
    head = aws.client("s3").head_object(Bucket=settings().upload_bucket, Key=upload["fields"]["key"])
    assert (head["ContentLength"], head["ContentType"]) == (11, "text/plain")
    queue_url = aws_resources["queues"][settings().upload_queue]
    bodies = [
        json.loads(m["Body"])
        for m in aws.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    ]
    assert any(b.get("Records", [{}])[0].get("eventName") == "ObjectCreated:Post" for b in bodies)


@pytest.mark.parametrize("filename", ["a.pdf", "a.doc", "noextension", "notes.txt.exe", "a.docx.zip"])
def test_other_file_types_are_refused(api: Api, filename: str) -> None:
    token, _ = paid(api)
    response = ask(api, token, filename)
    assert response.status_code == 400
    assert code(response) == "unsupported_file_type"


def test_size_limit(api: Api) -> None:
    token, _ = paid(api)
    assert ask(api, token, size=MAX).status_code == 201
    response = ask(api, token, size=MAX + 1)
    assert response.status_code == 400
    assert code(response) == "file_too_large"
    assert response.data["error"]["details"] == {"max_bytes": MAX}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filename": "a.txt", "size": 0}, "size"),
        ({"filename": "a.txt", "size": -5}, "size"),
        ({"filename": "a.txt", "size": "12"}, "size"),
        ({"filename": "a.txt", "size": 1.5}, "size"),
        ({"filename": "a.txt", "size": True}, "size"),
        ({"filename": "a.txt"}, "size"),
        ({"size": 10}, "filename"),
        ({"filename": 7, "size": 10}, "filename"),
        ({"filename": "  ", "size": 10}, "filename"),
        ({"filename": "\x00\x01\u202e", "size": 10}, "filename"),
        ({"filename": "a" * 1021 + ".txt", "size": 10}, "filename"),
        ({"filename": "a.txt", "size": 10, "content_type": ["text/plain"]}, "content_type"),
    ],
)
def test_invalid_fields_are_validation_errors(api: Api, body: dict[str, Any], field: str) -> None:
    token, _ = paid(api)
    response = api.call("POST", "/api/upload/", body, token=token)
    assert response.status_code == 400
    assert code(response) == "validation_error"
    assert field in response.data["error"]["details"]


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\Windows\\win.ini.txt", "win.ini.txt"),
        ("/abs/path/to/নথি.txt", "নথি.txt"),
        ("evil\u202etxt.exe.txt", "eviltxt.exe.txt"),
        ("tab\there\nnew.txt", "tabherenew.txt"),
        ("  spaced   out  .txt ", "spaced out .txt"),
    ],
)
def test_filename_is_sanitised_for_display_and_never_used_as_key(api: Api, raw: str, shown: str) -> None:
    token, user_id = paid(api)
    answer = ask(api, token, raw).data
    assert answer["file"]["filename"] == shown
    assert answer["upload"]["fields"]["key"] == f"uploads/{user_id}/{answer['file']['id']}.txt"


def test_long_filename_is_cut_to_255_keeping_the_extension(api: Api) -> None:
    token, _ = paid(api)
    shown = ask(api, token, "x" * 600 + ".docx").data["file"]["filename"]
    assert len(shown) == 255 and shown.endswith("x.docx")


def test_upload_request_is_logged_as_activity(api: Api) -> None:
    token, _ = paid(api)
    file_id = ask(api, token, "notes.txt", 11).data["file"]["id"]
    latest = api.call("GET", "/api/activity/?limit=1", token=token).data["items"][0]
    assert latest["action"] == "file_upload_requested"
    assert latest["metadata"] == {"file_id": file_id, "filename": "notes.txt", "size": 11}


def test_upload_prefix_matches_the_bucket_notification_filter() -> None:
    assert uploads.UPLOAD_PREFIX == resources.UPLOAD_PREFIX


# --- reading ---------------------------------------------------------------------------------


def test_list_is_own_files_newest_first_and_paginated(api: Api) -> None:
    token, _ = paid(api)
    other, _ = paid(api, "bob")
    ids = [ask(api, token, f"f{i}.txt").data["file"]["id"] for i in range(3)]
    ask(api, other, "bobs.txt")
    first = api.call("GET", "/api/files/?limit=2", token=token).data
    assert [f["id"] for f in first["items"]] == ids[::-1][:2]
    second = api.call("GET", f"/api/files/?limit=2&cursor={first['next_cursor']}", token=token).data
    assert [f["id"] for f in second["items"]] == ids[:1]
    assert second["next_cursor"] is None
    replayed = api.call("GET", f"/api/files/?cursor={first['next_cursor']}", token=other)
    assert (replayed.status_code, code(replayed)) == (400, "invalid_cursor")


def test_get_own_file_without_object_has_no_download_url(api: Api) -> None:
    token, _ = paid(api)
    file_id = ask(api, token).data["file"]["id"]
    response = api.call("GET", f"/api/files/{file_id}/", token=token)
    assert response.status_code == 200
    assert response.data["id"] == file_id and "download_url" not in response.data


def test_other_users_file_is_not_found_like_an_unknown_id(api: Api) -> None:
    token, _ = paid(api)
    intruder, _ = paid(api, "mallory")
    file_id = ask(api, token).data["file"]["id"]
    theirs = api.call("GET", f"/api/files/{file_id}/", token=intruder)
    unknown = api.call("GET", f"/api/files/{clock.new_id()}/", token=intruder)
    malformed = api.call("GET", f"/api/files/{'z' * 3000}/", token=intruder)
    assert theirs.status_code == unknown.status_code == malformed.status_code == 404
    assert theirs.data == unknown.data == malformed.data


def test_download_url_once_completed_is_a_short_lived_attachment(api: Api) -> None:
    token, _ = paid(api)
    file_id = ask(api, token, 'Résumé নথি "final".txt').data["file"]["id"]
    item = store(file_id)
    worker.handle_records(
        [{"messageId": "m1", "body": json.dumps(_s3_event(item.object_key)), "attributes": {}}],
    )
    view = api.call("GET", f"/api/files/{file_id}/", token=token).data
    assert (view["status"], view["word_count"]) == ("completed", 3)
    query = parse_qs(urlsplit(view["download_url"]).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == [str(settings().download_url_seconds)]
    assert query["response-content-disposition"] == [
        'attachment; filename="Resume _final_.txt"; '
        "filename*=UTF-8''R%C3%A9sum%C3%A9%20%E0%A6%A8%E0%A6%A5%E0%A6%BF%20%22final%22.txt"
    ]
    assert query["response-content-type"] == ["text/plain"]
    downloaded = requests.get(view["download_url"], timeout=5)
    assert downloaded.content == b"some words here"


def _s3_event(key: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": settings().upload_bucket}, "object": {"key": key}},
            }
        ]
    }


def _fail(file_id: str) -> File:
    item = File.get(file_id)
    assert uploads.transition(item, uploads.FileStatus.FAILED, None, error="The file is not plain text.")
    return item


def test_failed_file_has_a_download_url_only_while_its_object_exists(api: Api) -> None:
    token, _ = paid(api)
    file_id = ask(api, token).data["file"]["id"]
    _fail(file_id)
    assert "download_url" not in api.call("GET", f"/api/files/{file_id}/", token=token).data
    store(file_id)
    assert "download_url" in api.call("GET", f"/api/files/{file_id}/", token=token).data


@pytest.mark.parametrize(
    ("filename", "fallback"),
    [
        ("নথি.txt", "download.txt"),
        ("café.docx", "cafe.docx"),
        ('a"b\\c;d.txt', "a_b_c_d.txt"),
        (".txt", "download.txt"),
    ],
)
def test_content_disposition_has_an_ascii_fallback(filename: str, fallback: str) -> None:
    header = uploads.content_disposition(filename)
    assert header.startswith(f"attachment; filename=\"{fallback}\"; filename*=UTF-8''")
    assert header.isascii()


# --- reprocess ---------------------------------------------------------------------------------


def test_reprocess_requeues_a_failed_file_and_the_worker_finishes_it(api: Api, aws_resources: dict[str, Any]) -> None:
    token, user_id = paid(api)
    file_id = ask(api, token).data["file"]["id"]
    store(file_id, b"four words right here")
    _fail(file_id)
    answer = uploads.reprocess(file_id, actor_id="admin-id")
    assert (answer["id"], answer["status"], answer["error"]) == (file_id, "processing", None)
    entry = next(Activity.query(user_id, scan_index_forward=False, limit=1))
    assert (entry.action, entry.actor_id, entry.metadata["file_id"]) == ("admin_file_reprocess", "admin-id", file_id)

    queue_url = aws_resources["queues"][settings().upload_queue]
    sqs = aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
    tickets = [json.loads(m["Body"]).get(upload_events.REPROCESS_TICKET) for m in messages]
    assert len([t for t in tickets if t]) == 1  # besides S3's own test and upload events
    worker.handle_records(
        [{"messageId": m["MessageId"], "body": m["Body"], "attributes": m["Attributes"]} for m in messages]
    )
    view = api.call("GET", f"/api/files/{file_id}/", token=token).data
    assert (view["status"], view["word_count"]) == ("completed", 4)


def test_a_stale_reprocess_ticket_does_nothing(api: Api) -> None:
    token, _ = paid(api)
    file_id = ask(api, token).data["file"]["id"]
    item = store(file_id)
    _fail(file_id)
    uploads.reprocess(file_id, actor_id="admin-id")
    body = {**_s3_event(item.object_key), upload_events.REPROCESS_TICKET: clock.new_id()}
    worker.handle_records([{"messageId": "m", "body": json.dumps(body), "attributes": {}}])
    assert File.get(file_id).status == "processing"


@pytest.mark.parametrize("status", ["pending_upload", "completed"])
def test_reprocess_is_409_unless_failed(api: Api, status: str) -> None:
    token, _ = paid(api)
    file_id = ask(api, token).data["file"]["id"]
    if status == "completed":
        store(file_id)
        item = File.get(file_id)
        worker.handle_records([{"messageId": "m", "body": json.dumps(_s3_event(item.object_key)), "attributes": {}}])
    with pytest.raises(errors.Conflict) as raised:
        uploads.reprocess(file_id, actor_id="admin-id")
    assert raised.value.code == "file_not_failed"
    assert File.get(file_id).status == status


@pytest.mark.parametrize("file_id", ["0" * 32, "not-an-id"])
def test_reprocess_of_unknown_file_is_404(aws_resources: dict[str, Any], file_id: str) -> None:
    with pytest.raises(errors.NotFound):
        uploads.reprocess(file_id, actor_id="admin-id")


def test_reprocess_that_cannot_queue_leaves_the_file_failed(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    token, user_id = paid(api)
    file_id = ask(api, token).data["file"]["id"]
    _fail(file_id)

    def queue_down(key: str, ticket: str) -> None:
        raise ConnectionError("queue unreachable")

    monkeypatch.setattr(upload_events, "send_reprocess", queue_down)
    with pytest.raises(ConnectionError):
        uploads.reprocess(file_id, actor_id="admin-id")
    item = File.get(file_id)
    assert (item.status, item.error, item.attempt) == ("failed", "Could not queue the file for reprocessing.", None)
    assert next(Activity.query(user_id, scan_index_forward=False, limit=1)).action == "file_processing_failed"


# --- the owner's delete ------------------------------------------------------------------


def _versions(item: File) -> list[dict[str, Any]]:
    return (
        aws.client("s3")
        .list_object_versions(Bucket=settings().upload_bucket, Prefix=item.object_key)
        .get("Versions", [])
    )


def test_delete_removes_every_version_and_hides_the_file_from_its_owner(api: Api) -> None:
    token, user_id = paid(api)
    file_id = ask(api, token).data["file"]["id"]
    store(file_id, b"first")
    item = store(file_id, b"second")  # two versions, as a second POST leaves them
    response = api.call("DELETE", f"/api/files/{file_id}/", token=token)
    assert (response.status_code, response.body) == (204, b"")
    assert _versions(item) == []
    assert api.call("GET", f"/api/files/{file_id}/", token=token).status_code == 404
    assert api.call("DELETE", f"/api/files/{file_id}/", token=token).status_code == 404
    assert api.call("GET", "/api/files/", token=token).data["items"] == []
    record = File.get(file_id)  # staff still see it
    assert (record.status, record.status_day[:8], record.listed_user_id) == ("deleted", "deleted#", None)
    assert next(Activity.query(user_id, scan_index_forward=False, limit=1)).action == "file_deleted"


def test_delete_of_another_users_or_an_unknown_file_is_404(api: Api) -> None:
    token, _ = paid(api)
    other, _ = paid(api, "bob")
    file_id = ask(api, token).data["file"]["id"]
    for target, caller in ((file_id, other), ("0" * 32, token), ("not-an-id", token)):
        response = api.call("DELETE", f"/api/files/{target}/", token=caller)
        assert (response.status_code, code(response)) == (404, "not_found")
    assert File.get(file_id).status == "pending_upload"


def test_delete_while_processing_is_409_file_busy(api: Api) -> None:
    token, _ = paid(api)
    file_id = ask(api, token).data["file"]["id"]
    item = File.get(file_id)
    assert uploads.transition(item, uploads.FileStatus.PROCESSING, None, attempt=clock.new_id())
    response = api.call("DELETE", f"/api/files/{file_id}/", token=token)
    assert (response.status_code, code(response)) == (409, "file_busy")
    assert File.get(file_id).status == "processing"


def test_deleted_files_leave_no_short_pages_in_the_owners_list(api: Api) -> None:
    """A filter would read the deleted records first and answer an empty page with a cursor."""
    token, _ = paid(api)
    ids = [ask(api, token, f"f{n}.txt").data["file"]["id"] for n in range(5)]
    for file_id in ids[2:]:  # the three newest
        assert api.call("DELETE", f"/api/files/{file_id}/", token=token).status_code == 204
    page = api.call("GET", "/api/files/?limit=2", token=token).data
    assert [item["id"] for item in page["items"]] == [ids[1], ids[0]]


def test_the_bucket_is_versioned_and_expires_noncurrent_versions(aws_resources: dict[str, Any]) -> None:
    from infra.template import logical_id, merge_template

    s3, bucket = aws.client("s3"), settings().upload_bucket
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = {rule["ID"]: rule for rule in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    declared = merge_template(settings())["Resources"][logical_id(bucket)]["Properties"]
    assert declared["VersioningConfiguration"] == {"Status": "Enabled"}
    declared_rules = {rule["Id"]: rule for rule in declared["LifecycleConfiguration"]["Rules"]}
    rule = "expire-noncurrent-versions"
    expiry = rules[rule]["NoncurrentVersionExpiration"]
    assert expiry == declared_rules[rule]["NoncurrentVersionExpiration"] == {"NoncurrentDays": 1}
