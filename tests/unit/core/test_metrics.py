"""EMF metric lines: the documents CloudWatch would read, their limits, and what may never be in them."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest

from chalicelib.core import metrics
from chalicelib.core.config import settings


def emf_documents(text: str) -> list[dict[str, Any]]:
    """Every EMF document in captured output, checked against the format's rules as CloudWatch applies them."""
    found = []
    for line in text.splitlines():
        if '"_aws"' not in line:
            continue
        document = json.loads(line)
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == metrics.namespace()
        assert len(directive["Metrics"]) <= metrics.MAX_METRICS_PER_DOCUMENT
        for dimension_set in directive["Dimensions"]:
            assert all(isinstance(document[key], str) for key in dimension_set)
        for metric in directive["Metrics"]:
            values = document[metric["Name"]]
            assert isinstance(values, list) and 1 <= len(values) <= metrics.MAX_VALUES_PER_METRIC
        found.append(document)
    return found


def values(documents: list[dict[str, Any]], name: str, **dimensions: str) -> list[float]:
    """All values of metric `name` with exactly these dimension values, across documents."""
    return [
        value
        for document in documents
        for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
        if metric["Name"] == name
        and document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [sorted(dimensions)]
        and all(document[key] == value for key, value in dimensions.items())
        for value in document[name]
    ]


def test_outside_an_invocation_each_metric_is_written_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    metrics.count("ReturnsRejected", reason="forged")
    [document] = emf_documents(capsys.readouterr().out)
    assert document["reason"] == "forged" and document["ReturnsRejected"] == [1.0]
    assert document["_aws"]["CloudWatchMetrics"][0] == {
        "Namespace": f"PaidUpload/{settings().stage}",
        "Dimensions": [["reason"]],
        "Metrics": [{"Name": "ReturnsRejected", "Unit": "Count"}],
    }


def test_an_invocation_writes_once_summing_counts_and_keeping_each_timing(capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.collecting():
        metrics.count("PaymentsInitiated")
        metrics.count("PaymentsInitiated")
        metrics.timing("GatewayLatency", 120.5, call="initiate")
        metrics.timing("GatewayLatency", 80, call="initiate")
        metrics.timing("GatewayLatency", 30, call="search")
        metrics.count("PaymentsSettled", status="success")
        assert emf_documents(capsys.readouterr().out) == []  # nothing before the end
    documents = emf_documents(capsys.readouterr().out)
    assert len(documents) == 4  # one per set of dimension values
    assert values(documents, "PaymentsInitiated") == [2.0]
    assert values(documents, "GatewayLatency", call="initiate") == [120.5, 80.0]
    assert values(documents, "GatewayLatency", call="search") == [30.0]
    assert values(documents, "PaymentsSettled", status="success") == [1.0]
    units = {m["Name"]: m["Unit"] for d in documents for m in d["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["GatewayLatency"] == "Milliseconds"


def test_metrics_are_written_when_the_invocation_raises(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(RuntimeError), metrics.collecting():
        metrics.count("GatewayErrors", call="search")
        raise RuntimeError("boom")
    assert values(emf_documents(capsys.readouterr().out), "GatewayErrors", call="search") == [1.0]


def test_more_than_a_hundred_values_or_metrics_split_into_valid_documents(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    many = {f"Synthetic{i}": metrics.MetricSpec("Count") for i in range(230)}
    for name, spec in many.items():
        monkeypatch.setitem(metrics.CATALOG, name, spec)
    with metrics.collecting():
        for name in many:
            metrics.count(name)
        for ms in range(250):
            metrics.timing("WorkerDuration", ms)
    documents = emf_documents(capsys.readouterr().out)  # each within the limits
    assert sorted(values(documents, "WorkerDuration")) == [float(ms) for ms in range(250)]
    assert all(values(documents, name) == [1.0] for name in many)
    assert len(documents) == 5  # 230 counters + 100 durations in three, the other 150 durations in two


@pytest.mark.parametrize(
    ("name", "dimensions"),
    [
        ("PaymentsInvented", {}),  # undeclared: its alarm and widget would not exist
        ("PaymentsInitiated", {"user": "alice"}),  # a dimension the metric does not take
        ("ReturnsRejected", {}),  # a declared dimension left out
        ("ReturnsRejected", {"reason": "alice@example.com"}),
        ("ReturnsRejected", {"reason": "signature=dbb74894e82415a2f7ff0ec3a97e4183"}),
        ("HandlerDuration", {"function": "alice@example.com"}),
        ("HandlerDuration", {"function": "x" * 65}),
    ],
)
def test_undeclared_metrics_dimensions_and_values_are_refused(
    name: str, dimensions: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ValueError), metrics.collecting():
        metrics.count(name, **dimensions)
    assert emf_documents(capsys.readouterr().out) == []


def test_no_declared_dimension_can_carry_personal_data_or_secrets() -> None:
    for name, spec in metrics.CATALOG.items():
        for dimension in spec.dimensions:
            allowed = metrics.DIMENSION_VALUES[dimension]
            if allowed is None:
                assert dimension == "function", name  # Lambda's own names, pattern-checked
                continue
            assert all(re.fullmatch(r"[a-z]+(_[a-z]+)*", value) for value in allowed), (name, dimension)


def test_concurrent_invocations_keep_their_own_metrics_and_whole_lines(capsys: pytest.CaptureFixture[str]) -> None:
    start = threading.Barrier(8)

    def invocation(index: int) -> None:
        with metrics.collecting():
            start.wait()
            for _ in range(index + 1):
                metrics.count("FilesCompleted")
            metrics.timing("HandlerDuration", index, function=f"worker-{index}")

    threads = [threading.Thread(target=invocation, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    documents = emf_documents(capsys.readouterr().out)  # every line parses: none interleaved
    assert sorted(values(documents, "FilesCompleted")) == [float(i + 1) for i in range(8)]
    for index in range(8):
        assert values(documents, "HandlerDuration", function=f"worker-{index}") == [float(index)]
