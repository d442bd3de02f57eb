"""The CloudFormation merged into Chalice's own template (`chalice package --merge-template`).

Rendered from the pynamodb models and `infra/resources.py`, the same description the local
bootstrap uses, so tables, indexes, TTL, queues, bucket notification and CORS cannot drift.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pynamodb.models import Model

from chalicelib.core.config import Settings
from chalicelib.core.models import ALL_MODELS, Outbox
from infra import observability, resources, waf
from infra.policies import SENDER_PARAMETER


def logical_id(name: str) -> str:
    """`paidupload-prod-revoked-tokens` → `PaiduploadProdRevokedTokens` (CloudFormation ids are alphanumeric)."""
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _hash_first(keys: Sequence[Mapping[str, object]]) -> list[Mapping[str, object]]:
    return sorted(keys, key=lambda key: key["KeyType"] != "HASH")


def table_resource(model: type[Model]) -> dict[str, Any]:
    schema = model._get_schema()
    properties: dict[str, Any] = {
        "TableName": model.Meta.table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": schema["attribute_definitions"],
        "KeySchema": _hash_first(schema["key_schema"]),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
    }
    indexes = [
        {
            "IndexName": index["index_name"],
            "KeySchema": _hash_first(index["key_schema"]),
            "Projection": {"ProjectionType": index["projection"]["ProjectionType"]},
        }
        for index in schema["global_secondary_indexes"]
    ]
    if indexes:
        properties["GlobalSecondaryIndexes"] = indexes
    if view := getattr(model.Meta, "stream_view_type", None):
        properties["StreamSpecification"] = {"StreamViewType": view}
    ttl = model._ttl_attribute()
    if ttl is not None:
        properties["TimeToLiveSpecification"] = {"AttributeName": ttl.attr_name, "Enabled": True}
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": properties,
    }


def queue_resources(config: Settings) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for spec in resources.queues(config):
        properties: dict[str, Any] = {
            "QueueName": spec.name,
            "VisibilityTimeout": spec.visibility_timeout,
            "MessageRetentionPeriod": spec.retention_seconds,
            "SqsManagedSseEnabled": True,
        }
        if spec.dead_letter:
            properties["RedrivePolicy"] = {
                "deadLetterTargetArn": {"Fn::GetAtt": [logical_id(spec.dead_letter), "Arn"]},
                "maxReceiveCount": spec.max_receive_count,
            }
        found[logical_id(spec.name)] = {"Type": "AWS::SQS::Queue", "Properties": properties}
    return found


def bucket_resources(config: Settings) -> dict[str, Any]:
    spec = resources.bucket(config)
    queue_id, bucket_id = logical_id(spec.notify_queue), logical_id(spec.name)
    policy_id = f"{queue_id}Policy"
    dashboard_origin = {"Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}"}
    return {
        policy_id: {
            "Type": "AWS::SQS::QueuePolicy",
            "Properties": {
                "Queues": [{"Ref": queue_id}],
                "PolicyDocument": resources.s3_may_send(
                    {"Fn::GetAtt": [queue_id, "Arn"]},
                    {"Fn::Sub": f"arn:${{AWS::Partition}}:s3:::{spec.name}"},
                    {"Ref": "AWS::AccountId"},
                ),
            },
        },
        bucket_id: {
            "Type": "AWS::S3::Bucket",
            "DependsOn": [policy_id],  # S3 tests the notification target when it is set
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "BucketName": spec.name,
                "PublicAccessBlockConfiguration": {
                    "BlockPublicAcls": True,
                    "BlockPublicPolicy": True,
                    "IgnorePublicAcls": True,
                    "RestrictPublicBuckets": True,
                },
                "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
                },
                "CorsConfiguration": {
                    "CorsRules": [
                        {
                            "AllowedOrigins": [dashboard_origin],
                            "AllowedMethods": list(spec.cors_methods),
                            "AllowedHeaders": list(spec.cors_allowed_headers),
                            "ExposedHeaders": list(spec.cors_expose_headers),
                            "MaxAge": spec.cors_max_age,
                        }
                    ]
                },
                "VersioningConfiguration": {"Status": "Enabled"},
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": "abort-incomplete-multipart-uploads",
                            "Status": "Enabled",
                            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": spec.abort_multipart_days},
                        },
                        {
                            "Id": "expire-noncurrent-versions",
                            "Status": "Enabled",
                            "NoncurrentVersionExpiration": {"NoncurrentDays": spec.noncurrent_version_days},
                        },
                    ]
                },
                "NotificationConfiguration": {
                    "QueueConfigurations": [
                        {
                            "Event": "s3:ObjectCreated:*",
                            "Queue": {"Fn::GetAtt": [queue_id, "Arn"]},
                            "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": spec.notify_prefix}]}},
                        }
                    ]
                },
            },
        },
    }


def bucket_policy_resources(config: Settings) -> dict[str, Any]:
    """The upload bucket refuses every request not made over TLS (`aws:SecureTransport`),
    whoever makes it: presigned URLs and our own functions alike."""
    bucket_id = logical_id(resources.bucket(config).name)
    return {
        f"{bucket_id}Policy": {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {
                "Bucket": {"Ref": bucket_id},
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "DenyInsecureTransport",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [
                                {"Fn::GetAtt": [bucket_id, "Arn"]},
                                {"Fn::Sub": f"${{{bucket_id}.Arn}}/*"},
                            ],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                },
            },
        }
    }


@dataclass(frozen=True)
class GatewayAnswer:
    """How API Gateway answers a request that never reaches our code."""

    response_type: str
    code: str
    status: str | None = None  # None keeps API Gateway's own status
    message: str | None = None  # None passes API Gateway's own message on


# API Gateway answers a path or method it does not route with 403 "Missing Authentication
# Token"; sent with an `Authorization` header that is no SigV4 one (our bearer tokens), it
# tries to parse it as SigV4 and answers 403 IncompleteSignatureException ("Authorization
# header requires 'Credential' parameter..."), an invalid-signature response, and for an
# expired SigV4 token EXPIRED_TOKEN. No route of ours uses IAM auth (authentication is
# in-app and its 401s come from the function), so these three fire only for requests no
# route takes: each is the contract's 404. Authorizer-related types (UNAUTHORIZED,
# ACCESS_DENIED) keep DEFAULT_4XX: nothing here uses an authorizer.
NOT_ROUTED = ("MISSING_AUTHENTICATION_TOKEN", "INVALID_SIGNATURE", "EXPIRED_TOKEN")
GATEWAY_ANSWERS = (
    *(GatewayAnswer(kind, "not_found", "404", "No such resource.") for kind in NOT_ROUTED),
    GatewayAnswer("THROTTLED", "too_many_requests"),
    GatewayAnswer("REQUEST_TOO_LARGE", "request_too_large"),
    GatewayAnswer("DEFAULT_4XX", "bad_request"),
    GatewayAnswer("DEFAULT_5XX", "internal_error"),
)


def gateway_responses() -> dict[str, Any]:
    """API Gateway's own errors (unknown path, throttling, its 5XX) in the contract's error shape.

    Declared on Chalice's `AWS::Serverless::Api` (SAM's `GatewayResponses`), not as separate
    `AWS::ApiGateway::GatewayResponse` resources: SAM writes them into the API definition, so
    the stage's deployment includes them and a change to them redeploys the API.
    """
    found: dict[str, Any] = {}
    for answer in GATEWAY_ANSWERS:
        message = json.dumps(answer.message) if answer.message else "$context.error.messageString"
        body = f'{{"error": {{"code": "{answer.code}", "message": {message}}}}}'
        response: dict[str, Any] = {
            "ResponseParameters": {"Headers": {"Cache-Control": "'no-store'", "X-Content-Type-Options": "'nosniff'"}},
            "ResponseTemplates": {"application/json": body},
        }
        if answer.status:
            response["StatusCode"] = answer.status
        found[answer.response_type] = response
    return {"RestAPI": {"Properties": {"GatewayResponses": found}}}


def event_source_queues(config: Settings) -> dict[str, Any]:
    """Point Chalice's SQS event sources at the queues this template creates.

    Chalice writes the queue ARN as an `Fn::Sub` string; replacing it (same key, the merge is
    a deep merge) with a reference to our resource also orders the stack: queues first. Chalice
    has no partial batch responses (aws/chalice#2029): the handlers answer them
    (`chalicelib/core/batches.py`) and this turns them on.
    """
    sources = {
        "ProcessUploadEvents": config.upload_queue,
        "ProcessDeadUploadEvents": config.upload_dead_letter_queue,
        "SendMail": config.mail_queue,
    }
    return {
        function: {
            "Properties": {
                "Events": {
                    f"{function}SqsEventSource": {
                        "Properties": {
                            "Queue": {"Fn::Sub": f"${{{logical_id(queue)}.Arn}}"},
                            "FunctionResponseTypes": ["ReportBatchItemFailures"],
                        }
                    }
                }
            }
        }
        for function, queue in sources.items()
    }


def event_source_outbox() -> dict[str, Any]:
    """Feed the mail relay from the outbox table's stream (Chalice writes the decorator's
    placeholder ARN; a reference to our table also orders the stack: the table first).

    New items only (its TTL's deletions are no work); partial batch responses, so a batch is
    retried from the first job SQS did not take; retried for as long as the stream keeps the
    record (24 h, the defaults of -1), since a relay fails only while SQS does, and dropping a
    job would lose an email. `RelayMailIteratorAge` alarms long before that.
    """
    return {
        "RelayMail": {
            "Properties": {
                "Events": {
                    "RelayMailDynamodbEventSource": {
                        "Properties": {
                            "Stream": {"Fn::GetAtt": [logical_id(Outbox.Meta.table_name), "StreamArn"]},
                            "FunctionResponseTypes": ["ReportBatchItemFailures"],
                            "FilterCriteria": {"Filters": [{"Pattern": json.dumps({"eventName": ["INSERT"]})}]},
                            "MaximumRetryAttempts": -1,
                            "MaximumRecordAgeInSeconds": -1,
                        }
                    }
                }
            }
        }
    }


def merge_template(config: Settings) -> dict[str, Any]:
    resources_: dict[str, Any] = {logical_id(m.Meta.table_name): table_resource(m) for m in ALL_MODELS}
    resources_ |= queue_resources(config)
    resources_ |= bucket_resources(config)
    resources_ |= bucket_policy_resources(config)
    resources_ |= gateway_responses()
    # The API by its stage's name (Chalice leaves the OpenAPI title, the bare app name, for every
    # stage); CloudFormation emulators also need it (tests/integration/test_local_deploy.py).
    resources_["RestAPI"]["Properties"]["Name"] = config.resource_prefix
    resources_ |= event_source_queues(config)
    resources_ |= event_source_outbox()
    template = {
        "Parameters": {
            SENDER_PARAMETER: {
                "Type": "String",
                "Description": "The SES identity emails are sent from: a verified domain or address (docs/deploy.md).",
                "MinLength": 3,
            }
        },
        "Resources": resources_,
        "Outputs": {
            "DashboardURL": {
                "Value": {"Fn::Sub": "https://${RestAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/prod/dashboard/"}
            },
            "UploadBucket": {"Value": {"Ref": logical_id(config.upload_bucket)}},
        },
    }
    return waf.extend(observability.extend(template, config), config)
