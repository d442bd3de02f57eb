"""On Lambda the collector rests through the cold start and resumes, frozen, after the first run.

Each case runs in a fresh interpreter: this test process imported `app` long ago.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.stack import PROJECT_DIR

CONTEXT = "type('Context', (), {'aws_request_id': 'r-1', 'function_name': 'f'})()"
OPENAPI_EVENT = {
    "resource": "/api/openapi.json",
    "path": "/api/openapi.json",
    "httpMethod": "GET",
    "headers": {"Host": "localhost"},
    "multiValueHeaders": {},
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "requestContext": {"resourcePath": "/api/openapi.json", "httpMethod": "GET", "stage": "api", "requestId": "a"},
    "body": None,
    "isBase64Encoded": False,
}
S3_TEST_EVENT = {  # the worker logs and skips S3's test message: no AWS needed
    "Records": [
        {
            "messageId": "m-1",
            "receiptHandle": "h-1",
            "body": json.dumps({"Event": "s3:TestEvent", "Service": "Amazon S3"}),
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads",
            "awsRegion": "us-east-1",
        }
    ]
}
FIRST_RUNS = {
    "api": f"app.app({OPENAPI_EVENT!r}, {CONTEXT})",
    "worker": f"app.process_upload_events({S3_TEST_EVENT!r}, {CONTEXT})",
    "failing": f"app.process_upload_events({{'Records': [{{'body': 'not json'}}]}}, {CONTEXT})",
}


def _collector_states(first_run: str, *, on_lambda: bool) -> dict[str, object]:
    """The collector after `import app` and after one invocation, in a new interpreter."""
    program = f"""
import gc, json
import app
after_import = gc.isenabled()
try:
    {first_run}
except Exception:
    pass  # a failing first run must resume the collector too
print(json.dumps({{"after_import": after_import, "after_first_run": gc.isenabled(),
                  "frozen": gc.get_freeze_count(), "threshold": gc.get_threshold()}}))
"""
    env = {**os.environ, "STAGE": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
    if on_lambda:
        env["AWS_LAMBDA_FUNCTION_NAME"] = "paidupload-test-api_handler"
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("first_run", sorted(FIRST_RUNS))
def test_on_lambda_the_collector_rests_until_the_first_run_ends(first_run: str) -> None:
    states = _collector_states(FIRST_RUNS[first_run], on_lambda=True)
    assert states["after_import"] is False
    assert states["after_first_run"] is True
    assert states["frozen"] > 10_000  # what the cold start made is skipped from now on
    assert states["threshold"] == [700, 10, 10]  # Python's default, untouched


def test_off_lambda_importing_app_leaves_the_collector_alone() -> None:
    states = _collector_states(FIRST_RUNS["api"], on_lambda=False)
    assert states["after_import"] is True
    assert states["after_first_run"] is True
    assert states["frozen"] == 0
