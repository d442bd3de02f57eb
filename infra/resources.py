"""What the app needs besides its functions: one description for local and AWS.

Tables come from `chalicelib.core.models` (their keys and indexes); the bucket and queues are
described here. `local/bootstrap.py` creates them through the AWS APIs (moto, LocalStack,
or an account) and `infra/template.py` renders them as CloudFormation; a test checks that
both agree with what the code uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.core.config import Settings
from chalicelib.files.uploads import UPLOAD_PREFIX

WORKER_TIMEOUT_SECONDS = 60


@dataclass(frozen=True)
class QueueSpec:
    name: str
    visibility_timeout: int
    retention_seconds: int
    dead_letter: str | None = None
    max_receive_count: int = 3


@dataclass(frozen=True)
class BucketSpec:
    name: str
    notify_queue: str
    notify_prefix: str = UPLOAD_PREFIX
    cors_methods: tuple[str, ...] = ("POST", "GET", "HEAD")
    cors_allowed_headers: tuple[str, ...] = ("*",)
    cors_expose_headers: tuple[str, ...] = ("ETag", "Location")
    cors_max_age: int = 3000
    cors_origins: tuple[str, ...] = field(default=("*",))
    # Always versioned, so that what was counted stays what is served (see `chalicelib.files.uploads`);
    # versions that are no longer current (replaced before counting, or strays the worker
    # missed) expire after a day, the shortest rule S3 has.
    noncurrent_version_days: int = 1
    abort_multipart_days: int = 1


def queues(config: Settings) -> list[QueueSpec]:
    # Visibility timeout six times the worker's timeout, as AWS recommends for Lambda sources.
    return [
        QueueSpec(
            config.upload_dead_letter_queue, visibility_timeout=WORKER_TIMEOUT_SECONDS * 6, retention_seconds=14 * 86400
        ),
        QueueSpec(
            config.upload_queue,
            visibility_timeout=WORKER_TIMEOUT_SECONDS * 6,
            retention_seconds=4 * 86400,
            dead_letter=config.upload_dead_letter_queue,
        ),
        # Mail: a failing SES keeps the message here (retried 5 times), then on the DLQ.
        QueueSpec(
            config.mail_dead_letter_queue, visibility_timeout=WORKER_TIMEOUT_SECONDS * 6, retention_seconds=14 * 86400
        ),
        QueueSpec(
            config.mail_queue,
            visibility_timeout=WORKER_TIMEOUT_SECONDS * 6,
            retention_seconds=4 * 86400,
            dead_letter=config.mail_dead_letter_queue,
            max_receive_count=5,
        ),
    ]


def bucket(config: Settings, cors_origins: tuple[str, ...] = ("*",)) -> BucketSpec:
    return BucketSpec(name=config.upload_bucket, notify_queue=config.upload_queue, cors_origins=cors_origins)


def lifecycle(spec: BucketSpec) -> dict[str, Any]:
    """The bucket's lifecycle rules as S3's API takes them (the template renders the same)."""
    everything = {"Prefix": ""}
    return {
        "Rules": [
            {
                "ID": "abort-incomplete-multipart-uploads",
                "Filter": everything,
                "Status": "Enabled",
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": spec.abort_multipart_days},
            },
            {
                "ID": "expire-noncurrent-versions",
                "Filter": everything,
                "Status": "Enabled",
                "NoncurrentVersionExpiration": {"NoncurrentDays": spec.noncurrent_version_days},
            },
        ]
    }


def s3_may_send(queue_arn: Any, bucket_arn: Any, account: Any = None) -> dict[str, Any]:
    """The upload queue's policy: S3 may send it the bucket's notifications, nobody else.

    One document for the local bootstrap (plain ARNs) and the AWS template (intrinsics such as
    `Fn::GetAtt`); `account` adds the `aws:SourceAccount` guard where the account is known.
    """
    condition: dict[str, Any] = {"ArnLike": {"aws:SourceArn": bucket_arn}}
    if account is not None:
        condition["StringEquals"] = {"aws:SourceAccount": account}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": condition,
            }
        ],
    }
