"""Cold start as Lambda pays it: a fresh interpreter until its first answered request.

Run: `.venv/bin/python bench/bench_coldstart.py [--runs N]`. For each function (API, worker,
reconciler) a new `python` process imports `app` and hands it one event that reads DynamoDB
(`GET /api/health/` through `app.app(event, context)`, an S3 announcement for an unknown file,
the scheduled reconcile), against a moto server in its own process. The clock runs from just
before the process is spawned until it writes that the handler returned (interpreter start,
imports, client creation and the first round trip included; exit and teardown, which Lambda
does not wait for, excluded). The floor is a bare Chalice app whose one route creates a
botocore DynamoDB client and makes one call. Both run from bytecode, as the package ships it
(`infra/package.py`): the compiled files go to a temporary `PYTHONPYCACHEPREFIX`, written by the
warm-up run, so the checkout never holds stale ones. Runs alternate A/B so drift in the machine's speed
hits both; the ratio is the median of the pairwise ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
ANSWERED = "answered"

CONTEXT = "type('Context', (), {'aws_request_id': 'cold', 'function_name': 'bench'})()"
HTTP_EVENT = {
    "resource": "/api/health",
    "path": "/api/health/",
    "httpMethod": "GET",
    "headers": {"Host": "localhost", "Accept": "application/json"},
    "multiValueHeaders": {},
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "requestContext": {"resourcePath": "/api/health", "httpMethod": "GET", "stage": "api", "requestId": "cold"},
    "body": None,
    "isBase64Encoded": False,
}


def _sqs_event(bucket: str) -> dict[str, Any]:
    key = f"uploads/{'0' * 32}/{'1' * 32}.txt"  # has our key's shape: the worker looks it up
    body = {
        "Records": [{"eventName": "ObjectCreated:Post", "s3": {"bucket": {"name": bucket}, "object": {"key": key}}}]
    }
    record = {
        "messageId": "m-1",
        "receiptHandle": "r-1",
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:uploads",
        "awsRegion": "us-east-1",
    }
    return {"Records": [record]}


SCHEDULE_EVENT = {
    "version": "0",
    "account": "123456789012",
    "id": "cold",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "time": "2026-01-01T00:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/r"],
    "detail": {},
}

FLOOR = """
from chalice import Chalice
import botocore.session
app = Chalice(app_name="floor")
@app.route("/api/health")
def health():
    client = botocore.session.get_session().create_client("dynamodb")
    return {"tables": len(client.list_tables(Limit=1)["TableNames"])}
"""


def scripts(bucket: str) -> dict[str, str]:
    """Each function's first invocation, as a `python -c` program that prints ANSWERED."""
    http = f"import app; reply = app.app({HTTP_EVENT!r}, {CONTEXT}); assert reply['statusCode'] == 200, reply"
    return {
        "api": http,
        "worker": f"import app; app.process_upload_events({_sqs_event(bucket)!r}, {CONTEXT})",
        "reconciler": f"import app; app.reconcile_payments({SCHEDULE_EVENT!r}, {CONTEXT})",
        "floor": FLOOR + f"reply = app({HTTP_EVENT!r}, {CONTEXT}); assert reply['statusCode'] == 200, reply",
    }


def first_answer(program: str, env: dict[str, str], app_dir: Path = PROJECT_DIR) -> float:
    """Seconds from spawning a fresh interpreter to its first answered request."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-c", f"{program}\nprint({ANSWERED!r}, flush=True)"],
        cwd=app_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    line = ""
    for line in child.stdout:  # the app's JSON log lines come first
        if line.strip() == ANSWERED:
            break
    elapsed = time.perf_counter() - started
    _, errors = child.communicate()
    if line.strip() != ANSWERED or child.returncode:
        raise RuntimeError(f"the cold start failed: {errors[-2000:]}")
    return elapsed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_moto(env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A moto server in its own process (the API's DynamoDB is a network hop away, as on AWS)."""
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-p", env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1]],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", int(env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])), 0.2).close()
            return server
        except OSError:
            time.sleep(0.05)  # polling a port that is not open yet
    server.kill()
    raise RuntimeError("moto server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--only", choices=["api", "worker", "reconciler"], action="append")
    parser.add_argument("--app-dir", type=Path, default=PROJECT_DIR, help="another checkout's app (a before figure)")
    args = parser.parse_args()
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_free_port()}",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "STAGE": "local",
        "AWS_LAMBDA_FUNCTION_NAME": "bench",  # as Lambda sets it (chalicelib/core/coldstart.py)
        "PYTHONPYCACHEPREFIX": tempfile.mkdtemp(prefix="coldstart-pycache-"),
    }
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    server = start_moto(env)
    try:
        os.environ.update(env)
        sys.path.insert(0, str(PROJECT_DIR))
        from local import bootstrap

        bucket = bootstrap.ensure_all()["bucket"]
        programs = scripts(bucket)
        for name in args.only or ["api", "worker", "reconciler"]:
            first_answer(programs[name], env)  # warm-up: the OS's file cache, moto's first request
            first_answer(programs["floor"], env)
            pairs = [
                (first_answer(programs[name], env), first_answer(programs["floor"], env)) for _ in range(args.runs)
            ]
            ours = statistics.median(a for a, _ in pairs) * 1000
            floor = statistics.median(b for _, b in pairs) * 1000
            ratio = statistics.median(a / b for a, b in pairs)
            print(
                f"{name:<10} {ours:6.0f} ms  floor {floor:6.0f} ms  ratio {ratio:.2f}x  (median of {args.runs} pairs)"
            )
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(env["PYTHONPYCACHEPREFIX"], ignore_errors=True)


if __name__ == "__main__":
    main()
