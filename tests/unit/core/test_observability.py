"""Every handler's log lines carry the invocation's context; its metrics are written at its end."""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from chalice import Chalice
from chalice.test import Client

import app
from chalicelib.core import logs, metrics, observability
from chalicelib.core.config import settings
from infra import observability as infra_observability
from infra.template import merge_template
from local.runner import lambda_sqs_event
from tests.stack import PROJECT_DIR
from tests.unit.core.test_metrics import emf_documents, values

S3_TEST_EVENT = json.dumps({"Event": "s3:TestEvent", "Service": "Amazon S3"})  # the worker logs and skips it


class Context:
    """Lambda's context object, as far as handlers read it."""

    def __init__(self, function_name: str, aws_request_id: str) -> None:
        self.function_name = function_name
        self.aws_request_id = aws_request_id


class Lines(logging.Handler):
    """The app's JSON log lines, parsed, as they would reach CloudWatch Logs."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logs.JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def with_message(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["message"] == message]


@pytest.fixture
def log_lines() -> Iterator[Lines]:
    logs.setup()
    root, handler = logging.getLogger("paidupload"), Lines()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


@pytest.fixture
def warm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observability, "_cold", False)


def _sqs_event(body: str) -> dict[str, Any]:
    message = {"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": body, "Attributes": {}}
    return lambda_sqs_event([message], "arn:aws:sqs:us-east-1:123456789012:q", "us-east-1")


def test_worker_lines_carry_the_lambda_request_id_function_and_cold_start(
    aws_resources: dict[str, Any], log_lines: Lines, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(observability, "_cold", True)  # a new container
    app.process_upload_events(_sqs_event(S3_TEST_EVENT), Context("paidupload-prod-process_upload_events", "req-1"))
    app.process_upload_events(_sqs_event(S3_TEST_EVENT), Context("paidupload-prod-process_upload_events", "req-2"))
    first, second = log_lines.with_message("s3 test event skipped")
    assert first["request_id"] == "req-1" and first["cold_start"] is True
    assert second["request_id"] == "req-2" and second["cold_start"] is False
    assert first["function"] == second["function"] == "paidupload-prod-process_upload_events"
    documents = emf_documents(capsys.readouterr().out)
    function = "paidupload-prod-process_upload_events"
    assert values(documents, "ColdStarts", function=function) == [1.0]  # the first invocation only
    assert len(values(documents, "HandlerDuration", function=function)) == 2
    assert logs.request_id.get() == "-"  # nothing leaks past the invocation


def test_reconciler_lines_carry_the_lambda_request_id(
    aws_resources: dict[str, Any], log_lines: Lines, warm: None
) -> None:
    scheduled = {"version": "0", "id": "e-1", "detail-type": "Scheduled Event", "source": "aws.events"}
    scheduled |= {"account": "123456789012", "region": "us-east-1", "time": "", "resources": [], "detail": {}}
    app.reconcile_payments(scheduled, Context("paidupload-prod-reconcile_payments", "req-reconcile"))
    [line] = log_lines.with_message("payments reconciled")
    assert line["request_id"] == "req-reconcile"
    assert line["function"] == "paidupload-prod-reconcile_payments" and line["cold_start"] is False


def test_a_failing_handler_still_writes_its_metrics_and_raises(
    log_lines: Lines, capsys: pytest.CaptureFixture[str], warm: None
) -> None:
    def failing(event: Any) -> None:
        logs.event(logs.get("test"), "about to fail", file_id="f-1")
        raise RuntimeError("boom")

    event = type("Event", (), {"context": Context("fn", "req-fail")})()
    with pytest.raises(RuntimeError):
        observability.event_middleware(event, failing)
    [line] = log_lines.with_message("about to fail")
    assert line["request_id"] == "req-fail" and line["file_id"] == "f-1"
    assert len(values(emf_documents(capsys.readouterr().out), "HandlerDuration", function="fn")) == 1


def test_http_lines_carry_both_request_ids(log_lines: Lines, warm: None) -> None:
    """What `web.request_context_middleware` gets by wrapping its body in `http_invocation`."""
    probe = Chalice(app_name="probe")
    seen: dict[str, str] = {}

    @probe.middleware("http")
    def context(event: Any, get_response: Any) -> Any:
        with observability.http_invocation(event) as api_request_id:
            seen["api_request_id"] = api_request_id
            return get_response(event)

    @probe.route("/")
    def index() -> dict[str, bool]:
        logs.event(logs.get("test"), "in a view", transaction_id="t-1")
        return {"ok": True}

    with Client(probe) as client:
        assert client.http.get("/").status_code == 200
    [line] = log_lines.with_message("in a view")
    assert line["api_request_id"] == seen["api_request_id"]
    assert line["request_id"] not in ("-", line["api_request_id"])  # Lambda's own id
    assert line["transaction_id"] == "t-1" and line["cold_start"] is False and line["function"]


def test_concurrent_invocations_do_not_mix_their_context(log_lines: Lines, warm: None) -> None:
    """The local stack runs pollers and the API in threads of one process."""
    start = threading.Barrier(6)

    def handler(event: Any) -> None:
        start.wait()
        logs.event(logs.get("test"), "concurrent", index=event.index)

    def run(index: int) -> None:
        event = type("Event", (), {"context": Context(f"fn-{index}", f"req-{index}"), "index": index})()
        observability.event_middleware(event, handler)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seen = [(line["request_id"], line["function"], line["index"]) for line in log_lines.with_message("concurrent")]
    assert sorted(seen) == [(f"req-{i}", f"fn-{i}", i) for i in range(6)]


def test_context_fields_are_redacted_like_every_other_field(log_lines: Lines) -> None:
    with logs.bound(access_token="eyJ.secret"):
        logs.event(logs.get("test"), "bound secret")
    [line] = log_lines.with_message("bound secret")
    assert line["access_token"] == "***"


# --- the stack's side: alarms, topic, dashboard, tracing -------------------------------

RUNBOOK = PROJECT_DIR / "docs" / "operations.md"


@pytest.fixture
def template() -> dict[str, Any]:
    return merge_template(settings())


def test_every_alarm_notifies_the_topic_and_says_why_its_threshold(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    found = {name: r["Properties"] for name, r in resources.items() if r.get("Type") == "AWS::CloudWatch::Alarm"}
    assert set(found) == {alarm.name for alarm in infra_observability.alarms(settings())}
    assert {"Api5xxRate", "ApiLatencyP99", "GatewayErrors", "ReconcilerBacklog", "ReturnsRejectedBurst"} <= set(found)
    assert {"UploadDlqDepth", "WorkerErrors", "LambdaThrottles", "DynamoDbReadThrottles"} <= set(found)
    for name, properties in found.items():
        assert properties["AlarmActions"] == properties["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert "Threshold: " in properties["AlarmDescription"] and len(properties["AlarmDescription"]) <= 1024
    assert found["ReconcilerBacklog"]["Threshold"] == 15 * 60
    subscription = resources["AlarmTopicEmail"]
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert subscription["Condition"] in template["Conditions"] and "AlarmEmail" in template["Parameters"]


def _metrics_of(properties: dict[str, Any]) -> list[dict[str, Any]]:
    if "MetricName" in properties:
        return [properties]
    return [query["MetricStat"]["Metric"] for query in properties["Metrics"] if "MetricStat" in query]


def test_alarms_on_our_metrics_watch_what_the_code_writes(template: dict[str, Any]) -> None:
    watched = [
        metric
        for resource in template["Resources"].values()
        if resource.get("Type") == "AWS::CloudWatch::Alarm"
        for metric in _metrics_of(resource["Properties"])
        if metric["Namespace"] == metrics.namespace()
    ]
    assert {metric["MetricName"] for metric in watched} == {
        "GatewayAuthFailed",
        "GatewayErrors",
        "PaymentsMismatched",
        "ReconcilerBacklogAge",
        "ReturnsRejected",
    }
    for metric in watched:  # every dimension value one the code may record
        dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
        metrics._checked(metric["MetricName"], dimensions)
    rejected = {d["Value"] for m in watched if m["MetricName"] == "ReturnsRejected" for d in m["Dimensions"]}
    assert rejected == {"unknown", "mismatch", "forged"}  # a burst of any reason counts


def test_dashboard_substitutes_only_known_names(template: dict[str, Any]) -> None:
    body = template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    names = set(re.findall(r"\$\{([^}]+)\}", body))
    assert names == {"AWS::Region", *infra_observability.FUNCTIONS.values()}
    widgets = json.loads(body)["widgets"]
    titles = " ".join(widget["properties"]["title"] for widget in widgets)
    for subject in (
        "Payment funnel",
        "aamarPay latency",
        "Reconciler",
        "Worker",
        "API: requests, 4XX, 5XX",
        "API latency",
    ):
        assert subject in titles


def test_tracing_is_active_on_every_function_and_the_api_stage(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    for logical_id in infra_observability.FUNCTIONS.values():
        assert resources[logical_id]["Properties"]["Tracing"] == "Active"
    assert resources["RestAPI"]["Properties"]["TracingEnabled"] is True
    assert "GatewayResponses" in resources["RestAPI"]["Properties"]  # merged, not replaced


def test_function_logical_ids_are_chalices() -> None:
    assert set(infra_observability.FUNCTIONS) == {"api_handler", *(s.name for s in app.app.event_sources)}


def test_runbook_covers_every_alarm() -> None:
    text = RUNBOOK.read_text()
    headings = set(re.findall(r"^### (\w+)$", text, flags=re.M))
    assert {alarm.name for alarm in infra_observability.alarms(settings())} <= headings
