"""A pytest plugin: any DynamoDB Scan issued in this test process fails the test that issued it.

Every list the app serves must be a Query on a key or index. pynamodb and boto3 both send
requests through `botocore.client.BaseClient._make_api_call`, so one wrapper there sees all.
"""

from __future__ import annotations

from typing import Any

import botocore.client
import pytest

_original = botocore.client.BaseClient._make_api_call


class ScanIssued(AssertionError):
    """Raised in place of sending a DynamoDB Scan."""


def _guarded(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
    if operation_name == "Scan" and self.meta.service_model.service_name == "dynamodb":
        raise ScanIssued(f"DynamoDB Scan issued: {api_params.get('TableName')} (use a Query on a key or index)")
    return _original(self, operation_name, api_params)


def pytest_configure(config: pytest.Config) -> None:
    botocore.client.BaseClient._make_api_call = _guarded  # type: ignore[method-assign]


def pytest_unconfigure(config: pytest.Config) -> None:
    botocore.client.BaseClient._make_api_call = _original  # type: ignore[method-assign]
