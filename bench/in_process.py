"""The in-process moto stack that the call-counting benchmarks share.

Times measured on it are moto's (useful to compare, not DynamoDB's); the calls are counted
at botocore's client boundary, where every AWS request of the app passes.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "BCRYPT_ROUNDS": "4",
    "STAGE": "test",  # a local stage: the sandbox gateway and a fixed key are allowed
    "RESOURCE_PREFIX": "paidupload-bench",
    "JWT_SIGNING_KEY": "bench-signing-key-not-secret-0123456789abcdef",
}


@contextmanager
def moto_stack() -> Iterator[collections.Counter[str]]:
    """Every table, bucket and queue of the app in moto's mock, and a running count of the
    AWS operations sent (clear it before what you measure)."""
    os.environ.update(ENVIRONMENT)
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
        del os.environ[name]  # a configured endpoint would bypass the mock
    import botocore.client
    from moto import mock_aws

    calls: collections.Counter[str] = collections.Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(self: Any, operation: str, params: dict[str, Any]) -> Any:
        calls[operation] += 1
        return original(self, operation, params)

    with mock_aws():
        from local import bootstrap

        bootstrap.ensure_all()
        botocore.client.BaseClient._make_api_call = counting  # type: ignore[method-assign]
        try:
            yield calls
        finally:
            botocore.client.BaseClient._make_api_call = original  # type: ignore[method-assign]
