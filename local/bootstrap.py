"""Create every table, queue and bucket the app needs, through the AWS APIs, idempotently.

Used by `make run` (moto or an external endpoint such as LocalStack) and by tests. moto's
CloudFormation silently drops TTL, bucket notifications and CORS, so we never deploy the
template locally: we call the APIs with the same resource description instead.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.core import aws
from chalicelib.core.config import Settings, settings
from chalicelib.core.models import ALL_MODELS
from infra import resources


def ensure_tables() -> list[str]:
    names = []
    for model in ALL_MODELS:
        model.create_table(wait=True, billing_mode="PAY_PER_REQUEST", ignore_update_ttl_errors=True)
        names.append(model.Meta.table_name)
    return names


def stream_arns() -> dict[str, str]:
    """Table name -> its latest stream, for every model whose table has one (`Meta.stream_view_type`)."""
    dynamodb = aws.client("dynamodb")
    return {
        model.Meta.table_name: dynamodb.describe_table(TableName=model.Meta.table_name)["Table"]["LatestStreamArn"]
        for model in ALL_MODELS
        if getattr(model.Meta, "stream_view_type", None)
    }


def ensure_queues(config: Settings, visibility_timeout: int | None = None) -> dict[str, str]:
    """Queue name -> URL; dead-letter queues first so redrive policies can name them."""
    sqs = aws.client("sqs")
    urls: dict[str, str] = {}
    for spec in resources.queues(config):
        attributes = {
            "VisibilityTimeout": str(visibility_timeout or spec.visibility_timeout),
            "MessageRetentionPeriod": str(spec.retention_seconds),
        }
        if spec.dead_letter:
            dead_letter_arn = _queue_arn(urls[spec.dead_letter])
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": str(spec.max_receive_count)}
            )
        url = sqs.create_queue(QueueName=spec.name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
        urls[spec.name] = url
    return urls


def _queue_arn(url: str) -> str:
    reply = aws.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return reply["Attributes"]["QueueArn"]


def ensure_bucket(config: Settings, queue_urls: dict[str, str], cors_origins: tuple[str, ...] = ("*",)) -> str:
    spec = resources.bucket(config, cors_origins)
    s3 = aws.client("s3")
    region = s3.meta.region_name
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=spec.name)
        else:
            s3.create_bucket(Bucket=spec.name, CreateBucketConfiguration={"LocationConstraint": region})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_bucket_versioning(Bucket=spec.name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=spec.name, LifecycleConfiguration=resources.lifecycle(spec))
    s3.put_bucket_cors(
        Bucket=spec.name,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": list(spec.cors_origins),
                    "AllowedMethods": list(spec.cors_methods),
                    "AllowedHeaders": list(spec.cors_allowed_headers),
                    "ExposeHeaders": list(spec.cors_expose_headers),
                    "MaxAgeSeconds": spec.cors_max_age,
                }
            ]
        },
    )
    queue_url = queue_urls[spec.notify_queue]
    queue_arn = _queue_arn(queue_url)
    aws.client("sqs").set_queue_attributes(
        QueueUrl=queue_url,
        Attributes={"Policy": json.dumps(resources.s3_may_send(queue_arn, f"arn:aws:s3:::{spec.name}"))},
    )
    s3.put_bucket_notification_configuration(
        Bucket=spec.name,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": spec.notify_prefix}]}},
                }
            ]
        },
    )
    return spec.name


def ensure_all(
    config: Settings | None = None,
    *,
    visibility_timeout: int | None = None,
    cors_origins: tuple[str, ...] = ("*",),
) -> dict[str, Any]:
    """Create everything; returns what was ensured (table names, their streams, queue URLs, bucket)."""
    config = config or settings()
    tables = ensure_tables()
    queue_urls = ensure_queues(config, visibility_timeout)
    bucket = ensure_bucket(config, queue_urls, cors_origins)
    return {"tables": tables, "streams": stream_arns(), "queues": queue_urls, "bucket": bucket}
