"""A pytest plugin: any DynamoDB Scan issued in this test process fails the test that issued it.

Every list the app serves must be a Query on a key or index. pynamodb (it builds its own
botocore session) and boto3 both send requests through
`botocore.client.BaseClient._make_api_call`, so one wrapper there sees every client. The
wrapper refuses to send the Scan and raises; because app code may catch that (a route's
catch-all answers 500, the worker turns errors into a failed file), each Scan is also
remembered and the test phase (setup, call or teardown) that issued it fails regardless.

The wrapper is installed on import, for the life of the process: pytest's own in-process
runs (pytester) then cannot remove it from under the outer session.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import botocore.client
import pytest

_original = botocore.client.BaseClient._make_api_call
_issued: list[str] = []


class ScanIssued(AssertionError):
    """Raised in place of sending a DynamoDB Scan."""


def _guarded(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
    if operation_name == "Scan" and self.meta.service_model.service_name == "dynamodb":
        message = f"DynamoDB Scan issued on {api_params.get('TableName')}: use a Query on a key or index"
        _issued.append(message)
        raise ScanIssued(message)
    return _original(self, operation_name, api_params)


botocore.client.BaseClient._make_api_call = _guarded  # type: ignore[method-assign]


def _fail_on_scans() -> Generator[None, Any, Any]:
    """Wrap one test phase: fail it if a Scan was issued during it, even a swallowed one.

    Only the entries this phase added are judged and dropped, so a nested session (a
    pytester run inside a test) settles its own scans and leaves the outer test's alone.
    """
    mark = len(_issued)
    try:
        result = yield
    finally:
        scans = _issued[mark:]
        del _issued[mark:]
    if scans:
        raise ScanIssued("; ".join(scans))
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _fail_on_scans())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    return (yield from _fail_on_scans())


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, Any, Any]:
    return (yield from _fail_on_scans())
