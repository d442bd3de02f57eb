"""Alarms, their SNS topic, the dashboard and X-Ray tracing, merged into the packaged stack.

`infra/template.py` calls `extend` once. Metric names and dimensions come from
`chalicelib.core.metrics.CATALOG`, the same declarations the code records against, so an alarm
cannot watch a metric nobody writes under that name. Each alarm's threshold carries its reason
(`Alarm.why`); `docs/operations.md` says, per alarm, how to look and what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chalicelib.core import metrics
from chalicelib.core.config import Settings
from chalicelib.core.models import ALL_MODELS

# Chalice function name -> the logical id `chalice package` gives it.
FUNCTIONS = {
    "api_handler": "APIHandler",
    "process_upload_events": "ProcessUploadEvents",
    "process_dead_upload_events": "ProcessDeadUploadEvents",
    "reconcile_payments": "ReconcilePayments",
    "send_mail": "SendMail",
    "relay_mail": "RelayMail",
    "expire_uploads": "ExpireUploads",
}
WORKERS = ("ProcessUploadEvents", "ProcessDeadUploadEvents")
API_NAME = "paidupload"  # Chalice titles the API after the app; API Gateway's ApiName dimension
TOPIC = "AlarmTopic"
EMAIL_PARAMETER = "AlarmEmail"
# X-Ray accepts no resource-level permissions: the daemon in every traced function sends these.
TRACING_STATEMENT: dict[str, Any] = {
    "Effect": "Allow",
    "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
    "Resource": "*",
}
FIVE_MINUTES = 300
MAX_METRICS_PER_ALARM = 10  # CloudWatch's limit for a metric-math alarm, the expression included


def _dimensions(**values: Any) -> list[dict[str, Any]]:
    return [{"Name": name, "Value": value} for name, value in values.items()]


def _metric(namespace: str, name: str, **dimensions: Any) -> dict[str, Any]:
    return {"Namespace": namespace, "MetricName": name, "Dimensions": _dimensions(**dimensions)}


def _ours(name: str, **dimensions: str) -> dict[str, Any]:
    """One of the app's EMF metrics, checked against the catalog."""
    spec = metrics.CATALOG[name]
    assert set(dimensions) == set(spec.dimensions), (name, dimensions)
    return _metric(metrics.namespace(), name, **dimensions)


def _api(name: str, config: Settings) -> dict[str, Any]:
    return _metric("AWS/ApiGateway", name, ApiName=API_NAME, Stage=config.stage)  # stage name == api stage


def _function(name: str, logical_id: str) -> dict[str, Any]:
    return _metric("AWS/Lambda", name, FunctionName={"Ref": logical_id})


@dataclass(frozen=True)
class Alarm:
    """One alarm: a metric (or a sum of several, or an expression over them) against a threshold."""

    name: str  # logical id, and the runbook's heading
    means: str
    why: str  # the threshold's reason
    threshold: float
    metrics: tuple[dict[str, Any], ...]
    stat: str = "Sum"
    expression: str | None = None  # over m0, m1, ...; None: their sum (or the one metric)
    period: int = FIVE_MINUTES
    periods: int = 1
    datapoints: int | None = None  # of `periods`; None: all
    missing: str = "notBreaching"
    comparison: str = "GreaterThanOrEqualToThreshold"
    extra: dict[str, Any] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        properties: dict[str, Any] = {
            "AlarmDescription": f"{self.means} Threshold: {self.why} Runbook: docs/operations.md#{self.name.lower()}",
            "AlarmActions": [{"Ref": TOPIC}],
            "OKActions": [{"Ref": TOPIC}],
            "Threshold": self.threshold,
            "ComparisonOperator": self.comparison,
            "EvaluationPeriods": self.periods,
            "DatapointsToAlarm": self.datapoints or self.periods,
            "TreatMissingData": self.missing,
            **self.extra,
        }
        if len(self.metrics) == 1 and self.expression is None:
            [metric] = self.metrics
            properties |= metric | {"Period": self.period}
            if self.stat.startswith("p"):
                properties["ExtendedStatistic"] = self.stat
            else:
                properties["Statistic"] = self.stat
        else:
            assert len(self.metrics) < MAX_METRICS_PER_ALARM, self.name
            queries: list[dict[str, Any]] = [
                {
                    "Id": f"m{index}",
                    "MetricStat": {"Metric": metric, "Period": self.period, "Stat": self.stat},
                    "ReturnData": False,
                }
                for index, metric in enumerate(self.metrics)
            ]
            expression = self.expression or " + ".join(query["Id"] for query in queries)
            queries.append({"Id": "e", "Expression": expression, "Label": self.name, "ReturnData": True})
            properties["Metrics"] = queries
        return {"Type": "AWS::CloudWatch::Alarm", "Properties": properties}


def _table_batches() -> list[list[str]]:
    names = [model.Meta.table_name for model in ALL_MODELS]
    size = MAX_METRICS_PER_ALARM - 1
    return [names[start : start + size] for start in range(0, len(names), size)]


def alarms(config: Settings) -> list[Alarm]:
    """Every alarm of the stack, with the reason for its threshold."""
    calls = sorted(metrics.DIMENSION_VALUES["call"] or ())
    reasons = sorted(metrics.DIMENSION_VALUES["reason"] or ())
    found = [
        Alarm(
            "Api5xxRate",
            "The API answered 5XX (a bug, or DynamoDB/SSM/aamarPay failing under us).",
            "2% of requests for 10 of 15 minutes, counted only above 10 requests per 5 minutes: the contract"
            " allows no 5XX for anything a user does, a single retried blip stays quiet, and one error at night"
            " in two requests does not page anyone.",
            2,
            (_api("5XXError", config), _api("Count", config)),
            expression="IF(m1 >= 10, 100 * m0 / m1, 0)",
            periods=3,
            datapoints=2,
        ),
        Alarm(
            "ApiLatencyP99",
            "The slowest 1% of API requests take longer than 3 seconds.",
            "p99 above 3000 ms for 15 minutes: a login (bcrypt cost 12) is ~0.3 s and an initiation waits for"
            " aamarPay at most 3 s to connect; three periods ride out cold starts and one slow gateway minute.",
            3000,
            (_api("Latency", config),),
            stat="p99",
            periods=3,
            comparison="GreaterThanThreshold",
        ),
        Alarm(
            "GatewayErrors",
            "Calls to aamarPay (initiate or search) time out, are refused or answer nonsense.",
            "5 failed calls in 5 minutes: the client already retries searches and the reconciler settles"
            " later, so a hiccup is harmless; five means customers cannot start or confirm payments.",
            5,
            tuple(_ours("GatewayErrors", call=call) for call in calls),
        ),
        Alarm(
            "GatewayAuthFailed",
            "aamarPay refused our store id or signature key (a rotated or mistyped secret).",
            "1 refusal: every initiation and every search fails until an operator fixes the secret in SSM;"
            " the reconciler stops its run at the first one, so nothing else would page.",
            1,
            tuple(_ours("GatewayAuthFailed", call=call) for call in calls),
        ),
        Alarm(
            "PaymentsMismatched",
            "A payment expired while the gateway reported a success that does not match it (amount or currency).",
            "1 payment: a customer may have been charged for something we never granted; staff find it under"
            " the payments with status expired, its reason in the record and in the activity log.",
            1,
            (_ours("PaymentsMismatched"),),
        ),
        Alarm(
            "ReconcilerBacklog",
            "A payment has been due for a gateway check for more than 15 minutes, or the reconciler stopped reporting.",
            "15 minutes (900 s) as the issue sets it: the reconciler runs every 5 minutes, so a due payment"
            " older than three runs is stuck. Missing data breaches: a reconciler that does not run reports nothing.",
            900,
            (_ours("ReconcilerBacklogAge"),),
            stat="Maximum",
            period=2 * FIVE_MINUTES,  # at least one run falls in every period
            missing="breaching",
            comparison="GreaterThanThreshold",
        ),
        Alarm(
            "ReturnsRejectedBurst",
            "Many gateway returns were rejected (unknown transaction, amount mismatch, forged signature).",
            "10 in 5 minutes: a real customer produces one or two (a double submit, a stale tab); ten is"
            " someone replaying or forging callbacks.",
            10,
            tuple(_ours("ReturnsRejected", reason=reason) for reason in reasons),
        ),
        Alarm(
            "UploadDlqDepth",
            "Upload events failed processing repeatedly and reached the dead-letter queue.",
            "1 message: the dead-letter handler fails a message's file and deletes it at once, so a visible one"
            " means that handler is failing too.",
            1,
            (_metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=config.upload_dead_letter_queue),),
            stat="Maximum",
        ),
        Alarm(
            "MailDlqDepth",
            "Emails failed to send five times (SES refusing or down) and wait on the mail dead-letter queue.",
            "1 message: every email on it is one a customer is still waiting for (a reset link, a receipt).",
            1,
            (_metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=config.mail_dead_letter_queue),),
            stat="Maximum",
        ),
        Alarm(
            "MailRelayStalled",
            "The relay has not moved the outbox's oldest new job to the mail queue for 10 minutes (SQS refusing,"
            " or the relay failing).",
            "600 s of iterator age: the relay retries a failing batch for as long as the stream keeps it (24 h),"
            " so nothing is lost yet, but every email after it waits; a healthy relay keeps this near a second.",
            600_000,
            (_function("IteratorAge", FUNCTIONS["relay_mail"]),),
            stat="Maximum",
            comparison="GreaterThanThreshold",
        ),
        Alarm(
            "WorkerErrors",
            "The upload worker or the dead-letter handler raised (Lambda Errors).",
            "4 in 5 minutes: one poison message costs 3 (maxReceiveCount) before it moves to the dead-letter"
            " queue, which its own alarm reports; more than that is not one bad file.",
            4,
            tuple(_function("Errors", logical_id) for logical_id in WORKERS),
        ),
        Alarm(
            "LambdaThrottles",
            "Lambda refused to run one of our functions (concurrency limit reached).",
            "1 in 5 minutes: this traffic never needs the account's concurrency, so any throttle is a limit"
            " (a new account's is 10) or a runaway loop; API callers get errors at once.",
            1,
            tuple(_function("Throttles", logical_id) for logical_id in FUNCTIONS.values()),
        ),
    ]
    for index, tables in enumerate(_table_batches()):
        for kind in ("Read", "Write"):
            suffix = str(index + 1) if index else ""
            found.append(
                Alarm(
                    f"DynamoDb{kind}Throttles{suffix}",
                    f"DynamoDB throttled {kind.lower()}s on our tables (on-demand: a traffic jump or a hot key).",
                    "10 events in 5 minutes: botocore retries a few throttles unseen; ten means requests slow down or"
                    " fail, typically a hot counter or user item.",
                    10,
                    tuple(_metric("AWS/DynamoDB", f"{kind}ThrottleEvents", TableName=table) for table in tables),
                )
            )
    return found


def _widget(title: str, rows: list[list[Any]], *, stat: str = "Sum", x: int, y: int) -> dict[str, Any]:
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": 12,
        "height": 6,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "view": "timeSeries",
            "stat": stat,
            "period": FIVE_MINUTES,
            "metrics": rows,
        },
    }


def _row(metric: dict[str, Any], **options: Any) -> list[Any]:
    """A dashboard metric row: namespace, name, dimension pairs, then rendering options."""
    row: list[Any] = [metric["Namespace"], metric["MetricName"]]
    for dimension in metric["Dimensions"]:
        value = dimension["Value"]
        row += [dimension["Name"], f"${{{value['Ref']}}}" if isinstance(value, dict) else value]
    return row + ([options] if options else [])


def dashboard_body(config: Settings) -> dict[str, Any]:
    """The dashboard's widgets (as a dict; the template embeds it as an `Fn::Sub` JSON string)."""
    calls = sorted(metrics.DIMENSION_VALUES["call"] or ())
    statuses = sorted(metrics.DIMENSION_VALUES["status"] or ())
    reasons = sorted(metrics.DIMENSION_VALUES["reason"] or ())
    log_groups = " | ".join(f"SOURCE '/aws/lambda/${{{logical_id}}}'" for logical_id in FUNCTIONS.values())
    widgets = [
        _widget(
            "Payment funnel",
            [_row(_ours("PaymentsInitiated"))] + [_row(_ours("PaymentsSettled", status=s)) for s in statuses],
            x=0,
            y=0,
        ),
        _widget(
            "Rejected returns by reason",
            [_row(_ours("ReturnsRejected", reason=reason)) for reason in reasons],
            x=12,
            y=0,
        ),
        _widget(
            "aamarPay latency (p50, p99) and errors",
            [_row(_ours("GatewayLatency", call=call), stat=stat) for call in calls for stat in ("p50", "p99")]
            + [_row(_ours("GatewayErrors", call=call), stat="Sum", yAxis="right") for call in calls],
            stat="p99",
            x=0,
            y=6,
        ),
        _widget(
            "Reconciler: backlog age (s), checked, settled",
            [
                _row(_ours("ReconcilerBacklogAge"), stat="Maximum"),
                _row(_ours("ReconcilerChecked"), yAxis="right"),
                _row(_ours("ReconcilerSettled"), yAxis="right"),
            ],
            x=12,
            y=6,
        ),
        _widget(
            "Worker: files completed / failed, errors, dead letters",
            [
                _row(_ours("FilesCompleted")),
                _row(_ours("FilesFailed")),
                *(_row(_function("Errors", logical_id)) for logical_id in WORKERS),
                _row(
                    _metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=config.upload_dead_letter_queue),
                    stat="Maximum",
                ),
            ],
            x=0,
            y=12,
        ),
        _widget(
            "Worker: duration (p50, p99 ms) and words counted",
            [
                _row(_ours("WorkerDuration"), stat="p50"),
                _row(_ours("WorkerDuration"), stat="p99"),
                _row(_ours("WordsCounted"), stat="Sum", yAxis="right"),
            ],
            stat="p99",
            x=12,
            y=12,
        ),
        _widget(
            "API: requests, 4XX, 5XX",
            [_row(_api(name, config)) for name in ("Count", "4XXError", "5XXError")],
            x=0,
            y=18,
        ),
        _widget(
            "API latency (p50, p99 ms)",
            [_row(_api("Latency", config), stat="p50"), _row(_api("Latency", config), stat="p99")],
            stat="p99",
            x=12,
            y=18,
        ),
        _widget(
            "Logins and codes failed, lockouts, cold starts",
            [_row(_ours(name)) for name in ("LoginsFailed", "SecondFactorsFailed", "AccountLockouts")]
            + [_row(_ours("ColdStarts", function=f"${{{logical_id}}}")) for logical_id in FUNCTIONS.values()],
            x=0,
            y=24,
        ),
        {
            "type": "log",
            "x": 12,
            "y": 24,
            "width": 12,
            "height": 6,
            "properties": {
                "title": "Recent warnings and errors (all functions)",
                "region": "${AWS::Region}",
                "view": "table",
                "query": f"{log_groups} | filter level in ['WARNING', 'ERROR']"
                " | fields @timestamp, function, request_id, message, transaction_id, file_id"
                " | sort @timestamp desc | limit 50",
            },
        },
    ]
    return {"widgets": widgets}


def resources(config: Settings) -> dict[str, Any]:
    """The topic, its optional e-mail subscription, the alarms and the dashboard."""
    found: dict[str, Any] = {
        TOPIC: {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": f"{config.resource_prefix} alarms"}},
        f"{TOPIC}Email": {
            "Type": "AWS::SNS::Subscription",
            "Condition": "HasAlarmEmail",
            "Properties": {"TopicArn": {"Ref": TOPIC}, "Protocol": "email", "Endpoint": {"Ref": EMAIL_PARAMETER}},
        },
        "OperationsDashboard": {
            "Type": "AWS::CloudWatch::Dashboard",
            "Properties": {
                "DashboardName": f"{config.resource_prefix}-operations",
                "DashboardBody": {"Fn::Sub": json.dumps(dashboard_body(config), separators=(",", ":"))},
            },
        },
    }
    found |= {alarm.name: alarm.resource() for alarm in alarms(config)}
    return found


def tracing() -> dict[str, Any]:
    """X-Ray active tracing on every function and on the API stage (merged onto Chalice's resources)."""
    found: dict[str, Any] = {logical_id: {"Properties": {"Tracing": "Active"}} for logical_id in FUNCTIONS.values()}
    found["RestAPI"] = {"Properties": {"TracingEnabled": True}}
    return found


def _deep_merge(target: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value


def extend(template: dict[str, Any], config: Settings) -> dict[str, Any]:
    """`template` (the merge template) with the observability parts deep-merged in."""
    _deep_merge(
        template,
        {
            "Parameters": {
                EMAIL_PARAMETER: {
                    "Type": "String",
                    "Default": "",
                    "AllowedPattern": r"^$|^[^@\s]+@[^@\s]+$",
                    "Description": "Where alarms are e-mailed (confirm the subscription mail); empty: nobody.",
                }
            },
            "Conditions": {"HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": EMAIL_PARAMETER}, ""]}]}},
            "Resources": resources(config) | tracing(),
            "Outputs": {
                "AlarmTopic": {"Value": {"Ref": TOPIC}},
                "OperationsDashboard": {
                    "Value": {
                        "Fn::Sub": "https://${AWS::Region}.console.aws.amazon.com/cloudwatch/home"
                        f"#dashboards:name={config.resource_prefix}-operations"
                    }
                },
            },
        },
    )
    return template
