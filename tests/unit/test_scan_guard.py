"""The no-Scan guard (tests/scan_guard.py): any DynamoDB Scan fails the test that issued it."""

from __future__ import annotations

from typing import Any

import pytest

GUARDED_SESSION = """
import boto3
import pytest

from chalicelib.core.models import User


def _swallowed_scan():
    try:
        boto3.client("dynamodb", region_name="us-east-1").scan(TableName="anything")
    except Exception:
        pass  # app code that catches everything must not hide a Scan


@pytest.fixture
def scanning_fixture():
    _swallowed_scan()


def test_pynamodb_scan():
    list(User.scan())


def test_swallowed_boto3_scan():
    _swallowed_scan()


def test_scan_in_a_fixture(scanning_fixture):
    pass


def test_queries_are_fine():
    assert list(User.by_day.query("2000-01-01")) == []
"""


def test_any_scan_fails_the_test_that_issued_it(aws_resources: dict[str, Any], pytester: pytest.Pytester) -> None:
    from tests import scan_guard

    pytester.makepyfile(test_guarded=GUARDED_SESSION)
    result = pytester.runpytest("-p", "no:cacheprovider", plugins=[scan_guard])
    result.assert_outcomes(passed=1, failed=2, errors=1)
    result.stdout.fnmatch_lines(
        ["*ScanIssued: DynamoDB Scan issued on *users*", "*ScanIssued: DynamoDB Scan issued on anything*"]
    )
    # This outer test is not failed by the scans the inner session issued and settled.
