"""The code, the local bootstrap and the AWS template agree on every resource."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import app
from chalicelib.core import aws
from chalicelib.core.config import settings
from chalicelib.core.models import ALL_MODELS
from infra import observability, resources
from infra.package import stage_environment
from infra.policies import function_access, policy, policy_file_name
from infra.template import logical_id, merge_template

CHALICE_CONFIG = json.loads((Path(__file__).resolve().parents[2] / ".chalice" / "config.json").read_text())


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return merge_template(settings())["Resources"]


def _keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(key["AttributeName"], key["KeyType"]) for key in schema]


def test_every_table_in_the_template_matches_what_the_bootstrap_creates(
    aws_resources: dict[str, Any], template: dict[str, Any]
) -> None:
    dynamodb = aws.client("dynamodb")
    for model in ALL_MODELS:
        name = model.Meta.table_name
        declared = template[logical_id(name)]["Properties"]
        created = dynamodb.describe_table(TableName=name)["Table"]
        assert _keys(declared["KeySchema"]) == _keys(created["KeySchema"]), name
        declared_indexes = {i["IndexName"]: _keys(i["KeySchema"]) for i in declared.get("GlobalSecondaryIndexes", [])}
        created_indexes = {
            i["IndexName"]: sorted(_keys(i["KeySchema"]), key=lambda k: k[1] != "HASH")
            for i in created.get("GlobalSecondaryIndexes", [])
        }
        assert declared_indexes == created_indexes, name
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        declared_ttl = declared.get("TimeToLiveSpecification", {}).get("AttributeName")
        assert declared_ttl == ttl.get("AttributeName"), name
        assert declared["BillingMode"] == "PAY_PER_REQUEST"
        assert declared["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True


def test_queues_bucket_and_notification_agree(aws_resources: dict[str, Any], template: dict[str, Any]) -> None:
    config = settings()
    sqs = aws.client("sqs")
    for spec in resources.queues(config):
        declared = template[logical_id(spec.name)]["Properties"]
        url = aws_resources["queues"][spec.name]
        created = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert declared["QueueName"] == spec.name
        if spec.dead_letter:
            redrive = json.loads(created["RedrivePolicy"])
            assert int(redrive["maxReceiveCount"]) == declared["RedrivePolicy"]["maxReceiveCount"]
            assert redrive["deadLetterTargetArn"].endswith(f":{spec.dead_letter}")
    bucket = template[logical_id(config.upload_bucket)]["Properties"]
    assert bucket["BucketName"] == config.upload_bucket == aws_resources["bucket"]
    [queue_config] = aws.client("s3").get_bucket_notification_configuration(Bucket=config.upload_bucket)[
        "QueueConfigurations"
    ]
    [declared_notification] = bucket["NotificationConfiguration"]["QueueConfigurations"]
    assert queue_config["QueueArn"].endswith(f":{config.upload_queue}")
    prefix = declared_notification["Filter"]["S3Key"]["Rules"][0]["Value"]
    assert prefix == queue_config["Filter"]["Key"]["FilterRules"][0]["Value"] == "uploads/"
    assert all(bucket["PublicAccessBlockConfiguration"].values())


def test_worker_timeout_fits_the_visibility_timeout() -> None:
    functions = CHALICE_CONFIG["stages"]["prod"]["lambda_functions"]
    worker_timeout = functions["process_upload_events"]["lambda_timeout"]
    assert worker_timeout == resources.WORKER_TIMEOUT_SECONDS
    for spec in resources.queues(settings()):
        assert spec.visibility_timeout >= 6 * worker_timeout


def test_every_function_has_a_policy_and_a_size() -> None:
    names = {"api_handler", *(source.name for source in app.app.event_sources)}
    configured = CHALICE_CONFIG["stages"]["prod"]["lambda_functions"]
    assert set(configured) == names == set(function_access(settings()))
    for name, options in configured.items():
        assert options["iam_policy_file"] == policy_file_name(name)
        assert options["lambda_memory_size"] >= 128
    assert CHALICE_CONFIG["stages"]["prod"]["autogen_policy"] is False


def test_policies_name_only_our_resources_and_secrets() -> None:
    config = settings()
    for name, access in function_access(config).items():
        document = policy(access, config)
        for statement in document["Statement"]:
            if statement == observability.TRACING_STATEMENT:  # X-Ray takes no resource ARNs
                continue
            if statement["Resource"] == "*" and statement["Action"] == ["dynamodb:ListStreams"]:
                assert access.reads_streams_of, name  # a stream-fed function's mapping; it names no stream
            elif statement["Resource"] == "*":  # otherwise only KMS, and only through SSM
                assert statement["Action"] == ["kms:Decrypt"], name
                assert "kms:ViaService" in statement["Condition"]["StringEquals"], name
        text = json.dumps(document)
        for model in access.tables:
            assert f"table/{model.Meta.table_name}" in text
    reconcile = policy(function_access(config)["reconcile_payments"], config)
    assert "s3:" not in json.dumps(reconcile) and "ses:" not in json.dumps(reconcile)
    assert "sqs:" not in json.dumps(reconcile)  # its receipts go into the outbox, with the settlement
    for name, access in function_access(config).items():  # only the relay queues email jobs
        queue_arn = f'${{AWS::AccountId}}:{config.mail_queue}"'
        assert (queue_arn in json.dumps(policy(access, config))) == (name in ("relay_mail", "send_mail")), name
    for name, access in function_access(config).items():  # only the mail worker sends email
        assert ("ses:" in json.dumps(policy(access, config))) == (name == "send_mail"), name
    mail = policy(function_access(config)["send_mail"], config)
    [ses] = [s for s in mail["Statement"] if s["Action"] == ["ses:SendEmail"]]
    assert ses["Resource"]["Fn::Sub"].endswith(":identity/${MailSenderIdentity}")  # that identity only
    assert "ssm:" not in json.dumps(mail) and "s3:" not in json.dumps(mail)
    worker = json.dumps(policy(function_access(config)["process_upload_events"], config))
    assert "ssm:" not in worker and "payments" not in worker


def test_prod_stage_keeps_secrets_out_of_the_environment() -> None:
    environment = stage_environment("prod")
    assert environment["SECRETS_SSM_PREFIX"].startswith("/")
    for key in environment:
        assert not any(word in key for word in ("KEY", "SECRET_", "PASSWORD", "TOKEN")), key


def test_api_gateways_own_errors_answer_in_the_contract_shape(template: dict[str, Any]) -> None:
    responses = template["RestAPI"]["Properties"]["GatewayResponses"]  # merged into Chalice's API
    assert {"DEFAULT_4XX", "DEFAULT_5XX", "MISSING_AUTHENTICATION_TOKEN"} <= set(responses)
    bodies = {}
    for kind, properties in responses.items():
        # API Gateway substitutes the message already quoted, as a JSON string.
        rendered = properties["ResponseTemplates"]["application/json"].replace(
            "$context.error.messageString", json.dumps('Gateway "said" no')
        )
        bodies[kind] = json.loads(rendered)
        assert set(bodies[kind]) == {"error"} and set(bodies[kind]["error"]) == {"code", "message"}, kind
        assert re.fullmatch(r"[a-z]+(_[a-z]+)*", bodies[kind]["error"]["code"]), kind
    # An unknown path: API Gateway's 403 "Missing Authentication Token" becomes the contract's 404.
    assert responses["MISSING_AUTHENTICATION_TOKEN"]["StatusCode"] == "404"
    assert bodies["MISSING_AUTHENTICATION_TOKEN"]["error"]["code"] == "not_found"
    assert bodies["DEFAULT_5XX"]["error"] == {"code": "internal_error", "message": 'Gateway "said" no'}


@pytest.mark.parametrize("kind", ["MISSING_AUTHENTICATION_TOKEN", "INVALID_SIGNATURE", "EXPIRED_TOKEN"])
def test_requests_no_route_takes_answer_404_with_or_without_an_authorization_header(
    template: dict[str, Any], kind: str
) -> None:
    # Unknown path without Authorization: MISSING_AUTHENTICATION_TOKEN; with a bearer token,
    # API Gateway parses it as SigV4 and fails it as a signature ("requires 'Credential'").
    response = template["RestAPI"]["Properties"]["GatewayResponses"][kind]
    assert response["StatusCode"] == "404"
    body = json.loads(response["ResponseTemplates"]["application/json"])
    assert body == {"error": {"code": "not_found", "message": "No such resource."}}


def test_every_gateway_response_says_nosniff(template: dict[str, Any]) -> None:
    for kind, response in template["RestAPI"]["Properties"]["GatewayResponses"].items():
        assert response["ResponseParameters"]["Headers"]["X-Content-Type-Options"] == "'nosniff'", kind


def test_the_bucket_refuses_requests_without_tls(template: dict[str, Any]) -> None:
    bucket_id = logical_id(settings().upload_bucket)
    bucket_policy = template[f"{bucket_id}Policy"]
    assert bucket_policy["Type"] == "AWS::S3::BucketPolicy"
    assert bucket_policy["Properties"]["Bucket"] == {"Ref": bucket_id}
    (statement,) = bucket_policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*" and statement["Action"] == "s3:*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [{"Fn::GetAtt": [bucket_id, "Arn"]}, {"Fn::Sub": f"${{{bucket_id}.Arn}}/*"}]


def test_the_template_reads_tables_through_pynamodb_as_create_table_does() -> None:
    """`infra/template.py` renders tables with pynamodb's `_get_schema()` and `_ttl_attribute()`:
    private, but the very calls `Model.create_table` (the local bootstrap) is built on, so the AWS
    template and the local tables cannot disagree. This pins that use: if pynamodb renames them or
    changes their shape, this fails here rather than in a deploy."""
    from chalicelib.core.models import ALL_MODELS, RateLimit, User
    from infra.template import table_resource

    for model in ALL_MODELS:
        schema = model._get_schema()
        assert {"attribute_definitions", "key_schema"} <= set(schema)
        for index in schema.get("global_secondary_indexes", []):
            assert {"index_name", "key_schema", "projection"} <= set(index)
    users = table_resource(User)["Properties"]
    assert users["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert {index["IndexName"] for index in users["GlobalSecondaryIndexes"]} == {"by_day", "by_username", "by_email"}
    assert RateLimit._ttl_attribute() is not None
    assert table_resource(RateLimit)["Properties"]["TimeToLiveSpecification"]["AttributeName"] == "expires_at"


def test_scan_baseline_explains_only_what_it_names_and_flags_stale_entries() -> None:
    from infra.scan import Finding, unexplained

    baseline = {
        "checkov:CKV_A": {"resources": ["RestAPI"], "reason": "r"},
        "checkov:CKV_B": {"resources": "*", "reason": "r"},
        "parliament:GONE": {"resources": "*", "reason": "r"},
    }
    findings = [
        Finding("checkov", "CKV_A", "RestAPI", ""),
        Finding("checkov", "CKV_A", "UploadsBucket", ""),  # same check, a resource the entry does not name
        Finding("checkov", "CKV_B", "AnyTable", ""),
        Finding("parliament", "CKV_B", "SomeRole", ""),  # same check id, another scanner
    ]
    left, stale = unexplained(findings, baseline)
    assert left == [findings[1], findings[3]]
    assert stale == ["parliament:GONE"]


def test_every_baseline_entry_gives_its_reason() -> None:
    from infra.scan import BASELINE

    entries = {key: value for key, value in json.loads(BASELINE.read_text()).items() if not key.startswith("_")}
    assert entries
    for key, entry in entries.items():
        assert key.split(":")[0] in {"checkov", "parliament"}, key
        assert len(entry["reason"]) > 40 and "\n" not in entry["reason"], key
        assert entry["resources"] == "*" or (entry["resources"] and isinstance(entry["resources"], list)), key


def test_parliament_reads_the_roles_with_their_intrinsics_written_out() -> None:
    from infra.scan import resolved

    document = {"Resource": [{"Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"}]}
    assert resolved(document) == {"Resource": ["arn:aws:kms:us-east-1:123456789012:key/*"]}
    with pytest.raises(KeyError):  # an unknown reference is no silent empty string
        resolved({"Fn::Sub": "${Unknown}"})
