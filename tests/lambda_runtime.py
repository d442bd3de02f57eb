"""The shipped zip run as Lambda runs it: AWS's runtime interface client behind a Runtime API.

`awslambdaric` (the code inside Lambda's Python runtime that imports the handler and loops on
`/2018-06-01/runtime/invocation/next`) runs in a venv that holds only what Lambda's python3.11
runtime provides (`tests/lambda-runtime-requirements.txt`); the zip is unpacked beside it as
`/var/task` is, and the layer as `/opt` is, on the path where Lambda puts a layer's Python.
`RuntimeApi` is the other side of that loop: it hands out one event at a time and collects the
`/response` or `/error` the client posts back.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

REQUIREMENTS = Path(__file__).with_name("lambda-runtime-requirements.txt")
PREFIX = "/2018-06-01/runtime"


def runtime_venv(target: Path) -> Path:
    """The runtime's venv in `target` (kept while the requirements are the same); its python."""
    target = target.absolute()
    python = target / "bin" / "python"
    marker = target / ".requirements"
    wanted = REQUIREMENTS.read_text()
    if marker.exists() and marker.read_text() == wanted:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(target)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    marker.write_text(wanted)
    return python


def unpack(archive: Path, task_root: Path) -> Path:
    """The zip as Lambda lays it out in /var/task, or a layer's in /opt (a fresh directory every time)."""
    if task_root.exists():
        subprocess.run(["rm", "-rf", str(task_root)], check=True)
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(task_root)
    return task_root


@dataclass
class Invocation:
    request_id: str
    event: dict[str, Any]
    done: threading.Event = field(default_factory=threading.Event)
    outcome: str = ""  # "response" or "error"
    payload: Any = None


class RuntimeApi:
    """Lambda's Runtime API for one function: `invoke(event)` waits for the client's answer."""

    def __init__(self) -> None:
        self.pending: queue.Queue[Invocation] = queue.Queue()
        self.by_id: dict[str, Invocation] = {}
        self.init_errors: list[Any] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path != f"{PREFIX}/invocation/next":
                    self._answer(404)
                    return
                invocation = api.pending.get()
                deadline = int((time.time() + 60) * 1000)
                self._answer(
                    200,
                    json.dumps(invocation.event).encode(),
                    {
                        "Content-Type": "application/json",
                        "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
                        "Lambda-Runtime-Deadline-Ms": str(deadline),
                        "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:test",
                        "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]};Sampled=0",
                    },
                )

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                payload = json.loads(body) if body else None
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_errors.append(payload)
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    invocation = api.by_id[parts[1]]
                    invocation.outcome, invocation.payload = parts[2], payload
                    invocation.done.set()
                else:
                    self._answer(404)
                    return
                self._answer(202, b'{"status": "OK"}', {"Content-Type": "application/json"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}"

    def invoke(self, event: dict[str, Any], process: subprocess.Popen[bytes], timeout: float = 90) -> Invocation:
        invocation = Invocation(uuid.uuid4().hex, event)
        self.by_id[invocation.request_id] = invocation
        self.pending.put(invocation)
        deadline = time.monotonic() + timeout
        while not invocation.done.wait(0.1):
            if process.poll() is not None:
                raise RuntimeError(f"the runtime client exited {process.returncode}; init errors: {self.init_errors}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no answer in {timeout} s; init errors: {self.init_errors}")
        return invocation

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Function:
    """One function of the template, its runtime client running on the unpacked zip."""

    name: str
    api: RuntimeApi
    process: subprocess.Popen[bytes]
    log_path: Path

    def invoke(self, event: dict[str, Any]) -> Invocation:
        return self.api.invoke(event, self.process)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        self.api.close()

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def layer_path(task_root: Path, opt: Path) -> str:
    """sys.path's head on Lambda's python3.11: the task root, then the layers' two folders."""
    return os.pathsep.join(
        str(path) for path in (task_root, opt / "python" / "lib" / "python3.11" / "site-packages", opt / "python")
    )


def start_function(
    python: Path,
    task_root: Path,
    opt: Path,
    name: str,
    *,
    handler: str,
    memory: int,
    environment: dict[str, str],
    log_dir: Path,
) -> Function:
    """`python -m awslambdaric <handler>` in the task root, `opt` its layer, with the variables Lambda sets."""
    api = RuntimeApi()
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "PYTHONPATH": layer_path(task_root, opt),
        "LAMBDA_TASK_ROOT": str(task_root),
        "_HANDLER": handler,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "test",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        **environment,
    }
    log_path = log_dir / f"{name}.log"
    process = subprocess.Popen(
        [str(python.absolute()), "-m", "awslambdaric", handler],
        cwd=task_root,
        env=env,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
    )
    return Function(name, api, process, log_path)


def rest_event(
    method: str,
    path: str,
    *,
    body: dict[str, Any] | dict[str, str] | None = None,
    form: bool = False,
    headers: dict[str, str] | None = None,
    source_ip: str = "203.0.113.7",
) -> dict[str, Any]:
    """An API Gateway REST API proxy event (payload 1.0), as the `prod` stage delivers it."""
    all_headers = {
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-For": source_ip,
        "User-Agent": "pytest",
        "Accept": "application/json",
        **(headers or {}),
    }
    text = None
    if body is not None:
        all_headers["Content-Type"] = "application/x-www-form-urlencoded" if form else "application/json"
        text = urlencode(body) if form else json.dumps(body)
    resource = path.rstrip("/") or "/"
    return {
        "resource": resource,
        "path": resource,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {name: [value] for name, value in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "abc123",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": uuid.uuid4().hex,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime()),
            "path": f"/prod{resource}",
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": "prod",
            "domainPrefix": "abc123",
            "requestTimeEpoch": int(time.time() * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": "pytest"},
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "apiId": "abc123",
        },
        "body": text,
        "isBase64Encoded": False,
    }


def sqs_event(bodies: list[str], queue_arn: str) -> dict[str, Any]:
    """What Lambda's SQS event source mapping delivers: one record per message."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": uuid.uuid4().hex,
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": str(int(time.time() * 1000)),
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": str(int(time.time() * 1000)),
                },
                "messageAttributes": {},
                "md5OfBody": "0" * 32,
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


def stream_event(images: list[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """What Lambda's DynamoDB stream mapping delivers for new items (`NEW_IMAGE`): one record each."""
    return {
        "Records": [
            {
                "eventID": uuid.uuid4().hex,
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": int(time.time()),
                    "Keys": {"id": image["id"]},
                    "NewImage": image,
                    "SequenceNumber": f"{4421584500000000017450439091 + number}",
                    "SizeBytes": len(json.dumps(image)),
                    "StreamViewType": "NEW_IMAGE",
                },
                "eventSourceARN": stream_arn,
            }
            for number, image in enumerate(images)
        ]
    }


def s3_notification(bucket: str, key: str, size: int) -> str:
    """The body S3 puts on the queue for one ObjectCreated event (keys URL-encoded, as AWS does)."""
    from urllib.parse import quote_plus

    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "eventName": "ObjectCreated:Post",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/"), "size": size, "sequencer": "0055AED6DCD90281E5"},
        },
    }
    return json.dumps({"Records": [record]})


def scheduled_event() -> dict[str, Any]:
    """EventBridge's event for a `rate(...)` rule."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/test"],
        "detail": {},
    }
