"""Each function's IAM policy allows every AWS request its code makes, and no more than it names.

`infra/policies.py` is written from reading the code; here the code paths of every Lambda
function (the API's routes, the upload worker, the dead-letter handler, the reconciler) run
against moto while each DynamoDB, S3, SQS and SSM request, and each presigned URL, is
recorded with the function that made it, then judged against that function's own policy
document as IAM would: action and resource ARN, wildcards included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import botocore.client
import pytest
from chalice.test import Client

from chalicelib.accounts import accounts
from chalicelib.core import aws, clock
from chalicelib.core.config import SECRET_PARAMETERS, Settings, app_secrets, settings
from chalicelib.core.models import Activity, File, Payment
from infra import observability
from infra.policies import SENDER_PARAMETER, function_access, policy
from local.runner import lambda_sqs_event
from local.sandbox import Sandbox
from tests import mailbox
from tests.aamarpay_browser import GatewayReturn, press
from tests.unit.conftest import Api

REGION, ACCOUNT = "us-east-1", "123456789012"
S3_ACTIONS = {  # get_object: a presigned GET
    "HeadObject": "s3:GetObject",
    "get_object": "s3:GetObject",
    "ListObjectVersions": "s3:ListBucketVersions",
}
# Requests the function makes itself that S3 answers 404 for a missing key only when the
# caller may also list the bucket (403 otherwise); a presigned GET is the browser's request.
MAY_MEET_A_MISSING_KEY = {"HeadObject", "GetObject"}
ITEM_ACTIONS = {  # a transaction is authorized item by item
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


@dataclass(frozen=True)
class Need:
    """One permission a request needs: what IAM evaluates."""

    action: str
    resource: str


def _table(name: str) -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"


def _dynamodb(operation: str, params: dict[str, Any]) -> list[Need]:
    if operation in ("TransactWriteItems", "TransactGetItems"):
        return [
            Need(f"dynamodb:{ITEM_ACTIONS[kind]}", _table(body["TableName"]))
            for item in params["TransactItems"]
            for kind, body in item.items()
        ]
    if operation.startswith("Batch"):
        return [Need(f"dynamodb:{operation}", _table(name)) for name in params["RequestItems"]]
    index = f"/index/{params['IndexName']}" if "IndexName" in params else ""
    return [Need(f"dynamodb:{operation}", _table(params["TableName"]) + index)]


def _s3(operation: str, params: dict[str, Any]) -> list[Need]:
    bucket = f"arn:aws:s3:::{params['Bucket']}"
    if operation == "DeleteObjects":  # a batch is authorized object by object
        return [
            Need("s3:DeleteObject" + ("Version" if "VersionId" in item else ""), f"{bucket}/{item['Key']}")
            for item in params["Delete"]["Objects"]
        ]
    key = f"/{params['Key']}" if "Key" in params else ""
    action = S3_ACTIONS.get(operation, f"s3:{operation}") + ("Version" if "VersionId" in params else "")
    found = [Need(action, bucket + key)]
    if operation in MAY_MEET_A_MISSING_KEY:
        found.append(Need("s3:ListBucket", bucket))  # else a missing key answers 403, not 404
    return found


def _sqs(operation: str, params: dict[str, Any]) -> list[Need]:
    """A batch call is authorized as its single-message action (IAM has no `sqs:SendMessageBatch`)."""
    name = params.get("QueueName") or params["QueueUrl"].rsplit("/", 1)[-1]
    return [Need(f"sqs:{operation.removesuffix('Batch')}", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}")]


def _ssm(operation: str, params: dict[str, Any]) -> list[Need]:
    names = params.get("Names") or [params["Name"]]
    return [Need(f"ssm:{operation}", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}") for name in names]


UPLOAD_QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:paidupload-test-upload-events"
SENDER_IDENTITY = "paidupload.localhost"  # the stack parameter's value here: MAIL_FROM's domain


def _sesv2(operation: str, params: dict[str, Any]) -> list[Need]:
    """SES authorizes a send against the identity of the From address (its domain, verified)."""
    domain = str(params.get("FromEmailAddress", "")).rstrip(">").rpartition("@")[2]
    return [Need(f"ses:{operation}", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{domain}")]


def _dynamodbstreams(operation: str, params: dict[str, Any]) -> list[Need]:
    """Authorized against the stream; GetRecords names it only inside its iterator (moto's
    iterators begin with the stream's ARN)."""
    stream = params.get("StreamArn") or params["ShardIterator"].split("|", 1)[0]
    return [Need(f"dynamodb:{operation}", stream)]


NEEDS = {
    "dynamodb": _dynamodb,
    "dynamodbstreams": _dynamodbstreams,
    "s3": _s3,
    "sqs": _sqs,
    "ssm": _ssm,
    "sesv2": _sesv2,
}


def needs(service: str, operation: str, params: dict[str, Any]) -> list[Need]:
    """The IAM action(s) and resource ARN(s) a request is authorized against; any other service: `*`."""
    if service in NEEDS:
        return NEEDS[service](operation, params)
    return [Need(f"{service}:{operation}", "*")]


def _resolve(value: Any) -> str:
    """A policy's resource with CloudFormation's pseudo parameters filled in."""
    text = value["Fn::Sub"] if isinstance(value, dict) else value
    for name, actual in (("Partition", "aws"), ("Region", REGION), ("AccountId", ACCOUNT)):
        text = text.replace(f"${{AWS::{name}}}", actual)
    text = text.replace(f"${{{SENDER_PARAMETER}}}", SENDER_IDENTITY)
    assert "${" not in text, text
    return text


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allows(document: dict[str, Any], need: Need) -> bool:
    """True when an unconditional Allow statement matches the action and the resource."""
    for statement in document["Statement"]:
        if statement["Effect"] != "Allow" or "Condition" in statement:
            continue
        actions = _listed(statement["Action"])
        resources = [_resolve(resource) for resource in _listed(statement["Resource"])]
        if any(fnmatchcase(need.action, a) for a in actions) and any(fnmatchcase(need.resource, r) for r in resources):
            return True
    return False


class Recorder:
    """Collects the needs of every request made while a function is 'running'."""

    def __init__(self) -> None:
        self.function: str | None = None
        self.seen: dict[str, set[Need]] = {}

    @contextmanager
    def running(self, function: str) -> Iterator[None]:
        self.function = function
        try:
            yield
        finally:
            self.function = None

    def add(self, service: str, operation: str, params: dict[str, Any]) -> None:
        if self.function is not None:
            self.seen.setdefault(self.function, set()).update(needs(service, operation, params))

    def refused(self, config: Settings) -> dict[str, list[Need]]:
        """Per function, what its policy would deny (empty lists when all is allowed)."""
        access = function_access(config)
        return {
            function: sorted(
                (need for need in found if not allows(policy(access[function], config), need)),
                key=lambda need: (need.action, need.resource),
            )
            for function, found in self.seen.items()
        }


@pytest.fixture
def recorder(aws_resources: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recording = Recorder()
    send = botocore.client.BaseClient._make_api_call

    def recorded(client: Any, operation: str, params: dict[str, Any]) -> Any:
        recording.add(client.meta.service_model.service_name, operation, params)
        return send(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recorded)
    s3 = aws.client("s3")  # cached per container: the same client the app presigns with
    presign_post, presign_url = s3.generate_presigned_post, s3.generate_presigned_url

    def presigned_post(Bucket: str, Key: str, **kwargs: Any) -> Any:  # botocore's argument names
        recording.add("s3", "PutObject", {"Bucket": Bucket, "Key": Key})
        return presign_post(Bucket=Bucket, Key=Key, **kwargs)

    def presigned_url(ClientMethod: str, Params: dict[str, Any], **kwargs: Any) -> Any:
        recording.add("s3", ClientMethod, Params)
        return presign_url(ClientMethod=ClientMethod, Params=Params, **kwargs)

    monkeypatch.setattr(s3, "generate_presigned_post", presigned_post)
    monkeypatch.setattr(s3, "generate_presigned_url", presigned_url)
    return recording


# --- the journey, function by function -------------------------------------------------


def _deliver(api: Api, hop: GatewayReturn) -> None:
    """The browser coming back from the gateway's page."""
    path = urlsplit(hop.url).path
    headers = {"Accept": "text/html", "Content-Type": "application/x-www-form-urlencoded"}
    response = api.client.http.post(path, headers=headers, body=urlencode(hop.form).encode())
    assert response.status_code == 303, response.body


def _drain(client: Client, queue_url: str, function: str, recorder: Recorder) -> int:
    """Hand each queued message to `function` as Lambda's poller would (the poller's own calls aside)."""
    sqs, handled = aws.client("sqs"), 0
    while messages := sqs.receive_message(QueueUrl=queue_url, AttributeNames=["All"]).get("Messages", []):
        with recorder.running(function):
            client.lambda_.invoke(function, lambda_sqs_event(messages, f"arn:aws:sqs:{REGION}:{ACCOUNT}:q", REGION))
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=messages[0]["ReceiptHandle"])
        handled += 1
    return handled


def _browser_upload(answer: dict[str, Any], body: bytes) -> None:
    """What the browser's presigned POST leaves in the bucket (not a request of ours)."""
    aws.client("s3").put_object(Bucket=settings().upload_bucket, Key=answer["upload"]["fields"]["key"], Body=body)


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.data
    return response.data


def test_every_request_of_every_function_is_allowed_by_its_policy(
    api: Api, client: Client, gateway: Sandbox, recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = settings()
    queue, dead_letters = (
        aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
        for name in (config.upload_queue, config.upload_dead_letter_queue)
    )
    accounts.create_user("root", "root@example.com", "long enough", role="superuser")  # `make user`
    with recorder.running("api_handler"):
        _ok(api.call("GET", "/api/health/"))
        _ok(api.register("alice"), 201)
        wrong = api.call("POST", "/api/login/", {"username": "alice", "password": "wrong password"})
        assert wrong.status_code == 401  # the next login clears the failure counter: DeleteItem
        refreshed = _ok(api.call("POST", "/api/refresh/", {"refresh": api.login("alice")["refresh"]}))
        token = refreshed["access"]
        started = _ok(api.call("POST", "/api/initiate-payment/", {}, token), 201)
        _deliver(api, press(started["payment_url"], "pay"))
        _ok(api.call("GET", f"/api/transactions/{started['transaction_id']}/", None, token))
        _ok(api.call("GET", "/api/transactions/", None, token))
        good, empty, stuck, kept, never, late = (
            _ok(api.call("POST", "/api/upload/", {"filename": name, "size": 9}, token), 201)
            for name in ("good.txt", "empty.txt", "stuck.txt", "kept.txt", "never.txt", "late.txt")
        )
        unreturned = _ok(api.call("POST", "/api/initiate-payment/", {}, api.signed_up("bob")), 201)
        _ok(api.call("POST", "/api/password/forgot/", {"email": "bob@example.com"}), 202)
    press(unreturned["payment_url"], "pay")  # bob pays and closes the tab: the reconciler finds it
    _browser_upload(good, b"one two three four five six seven eight nine")
    _browser_upload(empty, b"")
    _browser_upload(kept, b"replaced before it is counted")
    _browser_upload(kept, b"counted")  # the later event finds the counted version recorded, deletes the other
    assert _drain(client, queue, "process_upload_events", recorder) >= 4

    with recorder.running("api_handler"):
        _ok(api.call("GET", "/api/files/", None, token))
        assert _ok(api.call("GET", f"/api/files/{good['file']['id']}/", None, token))["status"] == "completed"
        assert _ok(api.call("GET", f"/api/files/{empty['file']['id']}/", None, token))["status"] == "failed"  # HEAD
        _ok(api.call("GET", "/api/activity/", None, token))
        alice = _ok(api.call("GET", "/api/me/", None, token))["user"]["id"]
        admin = api.staff_login("root", "long enough")["access"]
        for feed in ("users", "transactions", "files", "activity", "stats"):
            _ok(api.call("GET", f"/api/admin/{feed}/", None, admin))
        _ok(api.call("POST", f"/api/admin/files/{empty['file']['id']}/reprocess/", {}, admin), 202)
        _ok(api.call("POST", f"/api/admin/transactions/{started['transaction_id']}/verify/", {}, admin))
        _ok(api.call("POST", f"/api/admin/users/{alice}/staff/", {"is_staff": True}, admin))
        assert api.call("DELETE", f"/api/files/{good['file']['id']}/", None, token).status_code == 204
        assert api.call("POST", "/api/logout/", {"refresh": refreshed["refresh"]}, token).status_code == 204
    assert _drain(client, queue, "process_upload_events", recorder) == 1  # the reprocess ticket
    with recorder.running("api_handler"):  # a paid account with a completed file leaves
        carol = api.signed_up("carol")
        paid = _ok(api.call("POST", "/api/initiate-payment/", {}, carol), 201)
        _deliver(api, press(paid["payment_url"], "pay"))
        kept_file = _ok(api.call("POST", "/api/upload/", {"filename": "mine.txt", "size": 9}, carol), 201)
    _browser_upload(kept_file, b"carol's words")
    assert _drain(client, queue, "process_upload_events", recorder) == 1
    with recorder.running("api_handler"):
        _ok(api.call("GET", "/api/me/export/", None, carol))
        assert api.call("DELETE", "/api/me/", {"password": "correct horse"}, carol).status_code == 204

    _browser_upload(kept, b"a stray whose own event failed")  # the dead-letter handler deletes it
    for dead in (stuck, kept):
        event = {"eventSource": "aws:s3", "eventName": "ObjectCreated:Post"}
        event["s3"] = {"bucket": {"name": config.upload_bucket}, "object": {"key": dead["upload"]["fields"]["key"]}}
        aws.client("sqs").send_message(QueueUrl=dead_letters, MessageBody=json.dumps({"Records": [event]}))
    assert _drain(client, dead_letters, "process_dead_upload_events", recorder) == 2
    assert File.get(stuck["file"]["id"]).status == "failed"
    kept_versions = aws.client("s3").list_object_versions(
        Bucket=config.upload_bucket, Prefix=kept["upload"]["fields"]["key"]
    )["Versions"]
    assert [v["VersionId"] for v in kept_versions] == [File.get(kept["file"]["id"]).version_id]

    later = clock.now() + timedelta(seconds=config.payment_recheck_after_seconds + 1)
    monkeypatch.setattr(clock, "now", lambda: later)
    with recorder.running("reconcile_payments"):
        client.lambda_.invoke("reconcile_payments", client.events.generate_cw_event("aws.events", "", {}, [], REGION))
    assert Payment.get(unreturned["transaction_id"]).status == "success"

    mail_queue = aws.client("sqs").get_queue_url(QueueName=config.mail_queue)["QueueUrl"]
    relay = mailbox.relay_poller()
    with recorder.running("relay_mail"):  # Lambda's mapping reads the stream with the function's role
        relay.drain()
    assert _drain(client, mail_queue, "send_mail", recorder) >= 3  # receipts, the reset link
    [reset_link] = [m for m in mailbox.outbox() if mailbox.links(m)]
    with recorder.running("api_handler"):
        body = {"token": mailbox.links(reset_link)[0], "new_password": "a new password"}
        _ok(api.call("POST", "/api/password/reset/", body))
    with recorder.running("relay_mail"):
        relay.drain()
    assert _drain(client, mail_queue, "send_mail", recorder) == 1  # "your password was changed"

    _browser_upload(late, b"its event is still queued")
    stale = later + timedelta(seconds=config.pending_upload_expire_seconds + 1)
    monkeypatch.setattr(clock, "now", lambda: stale)
    with recorder.running("expire_uploads"):
        client.lambda_.invoke("expire_uploads", client.events.generate_cw_event("aws.events", "", {}, [], REGION))
    assert (File.get(never["file"]["id"]).status, File.get(late["file"]["id"]).status) == ("deleted", "pending_upload")

    assert set(recorder.seen) == set(function_access(config))  # every function ran and made requests
    assert recorder.refused(config) == {function: [] for function in recorder.seen}


@pytest.fixture(autouse=True)
def mail_outbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_STATE_DIR", str(tmp_path))


@pytest.fixture
def secrets_in_ssm(aws_resources: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The configuration of a deployed stage: secrets under an SSM prefix, as `docs/deploy.md` creates them."""
    monkeypatch.setenv("SECRETS_SSM_PREFIX", "/paidupload/test")
    settings.cache_clear()
    for name in SECRET_PARAMETERS.values():
        aws.client("ssm").put_parameter(Name=f"/paidupload/test/{name}", Value=f"{name} value", Type="SecureString")
    yield settings()
    settings.cache_clear()
    app_secrets.cache_clear()


def test_secrets_are_readable_by_exactly_the_functions_that_use_them(
    secrets_in_ssm: Settings, recorder: Recorder
) -> None:
    config = secrets_in_ssm
    for function in ("api_handler", "reconcile_payments"):
        app_secrets.cache_clear()
        with recorder.running(function):
            assert app_secrets().aamarpay_signature_key == "aamarpay-signature-key value"
    assert recorder.refused(config) == {"api_handler": [], "reconcile_payments": []}
    readings = recorder.seen["api_handler"]
    assert len(readings) == len(SECRET_PARAMETERS)
    for function in ("process_upload_events", "process_dead_upload_events"):
        assert not any(allows(policy(function_access(config)[function], config), need) for need in readings)


def test_a_missing_parameter_stops_the_container_naming_only_the_parameter(secrets_in_ssm: Settings) -> None:
    aws.client("ssm").delete_parameter(Name="/paidupload/test/aamarpay-signature-key")
    app_secrets.cache_clear()
    with pytest.raises(RuntimeError) as raised:
        app_secrets()
    # The other two were read; neither their values nor their names are in the message.
    assert str(raised.value) == "missing SSM parameters: /paidupload/test/aamarpay-signature-key"


def test_documented_parameters_are_the_ones_the_code_reads() -> None:
    guide = (Path(__file__).resolve().parents[2] / "docs" / "deploy.md").read_text()
    documented = set(re.findall(r"put-parameter --type SecureString --name /paidupload/prod/([\w-]+)", guide))
    assert documented == set(SECRET_PARAMETERS.values())


def test_without_an_ssm_prefix_no_function_may_read_parameters() -> None:
    config = settings()
    assert not config.secrets_ssm_prefix
    for access in function_access(config).values():
        assert "ssm:" not in json.dumps(policy(access, config))


OTHER_PARAMETER = f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/paidupload/test/other"
UPLOAD_QUEUE = f"arn:aws:sqs:{REGION}:{ACCOUNT}:paidupload-test-upload-events"


@pytest.mark.parametrize(
    ("function", "need"),
    [
        ("process_upload_events", Need("dynamodb:GetItem", _table("paidupload-test-payments"))),
        ("process_upload_events", Need("dynamodb:Scan", _table("paidupload-test-files"))),
        ("process_upload_events", Need("s3:GetObject", "arn:aws:s3:::paidupload-test-uploads/elsewhere/x")),
        ("process_dead_upload_events", Need("s3:GetObject", "arn:aws:s3:::paidupload-test-uploads/uploads/x")),
        (
            "reconcile_payments",
            Need("sqs:SendMessage", UPLOAD_QUEUE),
        ),
        ("api_handler", Need("dynamodb:GetItem", _table("paidupload-other-users"))),
        ("api_handler", Need("s3:DeleteObject", "arn:aws:s3:::paidupload-test-uploads/uploads/x")),
        ("api_handler", Need("dynamodb:DeleteItem", _table("paidupload-test-files"))),
        ("api_handler", Need("dynamodb:DeleteItem", _table("paidupload-test-activity"))),
        ("api_handler", Need("dynamodb:DeleteItem", _table("paidupload-test-payments"))),
        ("process_upload_events", Need("dynamodb:DeleteItem", _table("paidupload-test-files"))),
        ("process_dead_upload_events", Need("s3:ListBucket", "arn:aws:s3:::paidupload-test-uploads")),
        ("reconcile_payments", Need("s3:ListBucket", "arn:aws:s3:::paidupload-test-uploads")),
        ("api_handler", Need("s3:ListBucket", "arn:aws:s3:::paidupload-test-other")),
        ("api_handler", Need("ssm:GetParameters", OTHER_PARAMETER)),
        ("api_handler", Need("ses:SendEmail", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{SENDER_IDENTITY}")),
        ("send_mail", Need("ses:SendEmail", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/other.example")),
        ("send_mail", Need("ses:SendRawEmail", f"arn:aws:ses:{REGION}:{ACCOUNT}:identity/{SENDER_IDENTITY}")),
        ("send_mail", Need("sqs:SendMessage", UPLOAD_QUEUE_ARN)),
        ("send_mail", Need("dynamodb:PutItem", _table("paidupload-test-activity"))),
        (
            "reconcile_payments",
            Need("sqs:SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:paidupload-test-upload-events"),
        ),
    ],
)
def test_policies_deny_what_a_function_does_not_use(secrets_in_ssm: Settings, function: str, need: Need) -> None:
    config = secrets_in_ssm
    assert not allows(policy(function_access(config)[function], config), need)


def test_every_traced_function_may_send_traces_and_not_read_them() -> None:
    """X-Ray's daemon sends a traced function's segments with that function's role (no resource ARNs)."""
    config = settings()
    assert set(observability.FUNCTIONS) == set(function_access(config))  # every function is traced
    for function, access in function_access(config).items():
        document = policy(access, config)
        for action in ("xray:PutTraceSegments", "xray:PutTelemetryRecords"):
            assert allows(document, Need(action, "*")), function
        assert not allows(document, Need("xray:BatchGetTraces", "*")), function


@pytest.mark.parametrize("function", sorted(function_access(settings())))
@pytest.mark.parametrize("action", ["dynamodb:UpdateItem", "dynamodb:DeleteItem"])
def test_the_activity_log_is_append_only_for_every_function(function: str, action: str) -> None:
    config = settings()
    table = _table(Activity.Meta.table_name)
    document = policy(function_access(config)[function], config)
    assert not allows(document, Need(action, table))
    assert not allows(document, Need(action, table + "/index/by-day"))


def test_functions_that_read_objects_may_list_the_bucket_so_a_missing_key_is_a_404() -> None:
    config = settings()
    bucket = f"arn:aws:s3:::{config.upload_bucket}"
    for function, access in function_access(config).items():
        reads = allows(policy(access, config), Need("s3:GetObject", f"{bucket}/uploads/x"))
        assert allows(policy(access, config), Need("s3:ListBucket", bucket)) == reads, function
