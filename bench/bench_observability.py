"""Observability's cold-start cost: import + first response in a fresh process, per variant.

Run: `.venv/bin/python bench/bench_observability.py [--runs N]`. Each run is a new Python
process (what a Lambda cold start is) that imports the handler and answers one API Gateway
event for a route that touches no AWS service (`GET /api/openapi.json`, so the figure is the
code's, not the emulator's). Variants:

- `bare`: a Chalice app with one route that builds a botocore client (the yardstick);
- `app`: this project's `app.py`, with its own EMF metrics and log context;
- `powertools`: the same app plus Powertools' Logger and Metrics (a metric added and
  flushed in the invocation, as its middleware would);
- `powertools-tracer`: as above plus Powertools' Tracer, which imports aws-xray-sdk and
  patches botocore and requests (what shows DynamoDB, S3 and aamarPay in a trace).

Medians over rounds in which the variants take turns; the ratio is taken within each round.
Only public tools: `subprocess`, `time.perf_counter`, `statistics`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
VARIANTS = ("bare", "app", "powertools", "powertools-tracer")
LAMBDA_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_LAMBDA_FUNCTION_NAME": "paidupload-prod-api_handler",  # Powertools acts as in Lambda
    "_X_AMZN_TRACE_ID": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
    "POWERTOOLS_SERVICE_NAME": "paidupload",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def api_event(path: str) -> dict[str, Any]:
    """A minimal API Gateway (REST, proxy) event for GET `path`."""
    return {
        "resource": path,
        "path": path,
        "httpMethod": "GET",
        "headers": {"Host": "bench.example", "Accept": "application/json"},
        "multiValueHeaders": {},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"resourcePath": path, "httpMethod": "GET", "requestId": "bench", "stage": "prod"},
        "body": None,
        "isBase64Encoded": False,
    }


class Context:
    """The attributes of Lambda's context object that handlers read."""

    function_name = "paidupload-prod-api_handler"
    aws_request_id = "bench-request"
    memory_limit_in_mb = 1769
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:paidupload-prod-api_handler"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def _bare_handler() -> Any:
    import botocore.session
    from chalice import Chalice

    bare = Chalice(app_name="bare")

    @bare.route("/api/openapi.json")
    def index() -> dict[str, Any]:
        botocore.session.get_session().create_client("dynamodb", region_name="us-east-1")
        return {"ok": True}

    return bare


def probe(variant: str) -> dict[str, float]:
    """Import the handler for `variant`, answer one request; milliseconds for each step."""
    started = time.perf_counter()
    if variant == "bare":
        handler = _bare_handler()
    else:
        sys.path.insert(0, str(PROJECT_DIR))
        import app

        handler = app.app
        if variant.startswith("powertools"):
            from aws_lambda_powertools import Logger, Metrics

            logger, metrics = Logger(), Metrics(namespace="PaidUpload/bench")
            if variant == "powertools-tracer":
                from aws_lambda_powertools import Tracer

                Tracer()  # auto-patches botocore, requests, pynamodb's botocore calls
    imported = time.perf_counter()
    response = handler(api_event("/api/openapi.json"), Context())
    assert response["statusCode"] == 200, response
    if variant.startswith("powertools"):
        logger.info("request")
        metrics.add_metric(name="Requests", unit="Count", value=1)
        metrics.flush_metrics()
    answered = time.perf_counter()
    return {"import_ms": (imported - started) * 1000, "first_response_ms": (answered - started) * 1000}


def run_probe(variant: str) -> dict[str, float]:
    """One fresh process; its own figures plus the whole process's wall time."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, __file__, "--probe", variant],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **LAMBDA_ENV},
    )
    row = json.loads(result.stdout.strip().splitlines()[-1])
    row["process_ms"] = (time.perf_counter() - started) * 1000
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--probe", choices=VARIANTS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe)))
        return
    # Variants take turns within each round, and each is compared with `bare` of its own round:
    # pairing keeps the ratio meaningful when the shared machine's speed drifts.
    rounds = [{variant: run_probe(variant) for variant in VARIANTS} for _ in range(args.runs)]
    print(f"{'variant':<18} {'import ms':>10} {'first response ms':>18} {'process ms':>11} {'vs bare':>8}")
    for variant in VARIANTS:
        median = {key: statistics.median(r[variant][key] for r in rounds) for key in rounds[0][variant]}
        ratio = statistics.median(r[variant]["first_response_ms"] / r["bare"]["first_response_ms"] for r in rounds)
        print(
            f"{variant:<18} {median['import_ms']:>10.0f} {median['first_response_ms']:>18.0f}"
            f" {median['process_ms']:>11.0f} {ratio:>7.2f}x"
        )


if __name__ == "__main__":
    main()
