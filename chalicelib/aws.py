"""Lazily created boto3 clients, one per service and container.

boto3 costs ~200 ms to import, so it is imported on first use: handlers that only touch
DynamoDB (through pynamodb/botocore) never pay for it. Endpoints follow botocore's own
`AWS_ENDPOINT_URL[_<SERVICE>]` variables, which is all LocalStack or moto needs.
"""

from __future__ import annotations

import functools
from typing import Any


@functools.cache
def client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    retries = {"mode": "standard", "max_attempts": 3}
    # SigV4 for S3: without it botocore presigns URLs and POSTs with SigV2.
    signature = {"signature_version": "s3v4"} if service == "s3" else {}
    config = Config(retries=retries, **signature)
    return boto3.session.Session().client(service, config=config)
