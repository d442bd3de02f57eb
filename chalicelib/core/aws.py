"""Lazily created botocore clients, one per service and container.

Plain botocore, not boto3: every call the app makes (S3 objects and presigned POST/GET, SQS
messages) is botocore's, and boto3 costs ~200 ms more to import on a cold start. Created on
first use, so handlers that only touch DynamoDB (through pynamodb) never build them.
Endpoints follow botocore's own `AWS_ENDPOINT_URL[_<SERVICE>]` variables, which is all
LocalStack or moto needs.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_creating = threading.Lock()  # a botocore session is not thread-safe; the clients it makes are


@functools.cache
def _session() -> Any:
    """One botocore session for every client: each new session parses botocore's endpoint and
    model JSON again (about 0.1 CPU-s per client, paid by every test that starts afresh)."""
    import botocore.session

    return botocore.session.get_session()


@functools.cache
def client(service: str) -> Any:
    from botocore.config import Config

    # SigV4 for S3: without it botocore presigns URLs and POSTs with SigV2. Regional endpoints
    # for DynamoDB Streams (read by the local runner): moto answers no account-based one.
    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        signature_version="s3v4" if service == "s3" else None,
        account_id_endpoint_mode="disabled" if service == "dynamodbstreams" else None,
    )
    return create_client(service, config=config)


def create_client(*args: Any, **kwargs: Any) -> Any:
    """A client of the one session, made under its lock: how pynamodb's connections get theirs
    (`chalicelib.core.db`), instead of a session of their own each."""
    with _creating:
        return _session().create_client(*args, **kwargs)
