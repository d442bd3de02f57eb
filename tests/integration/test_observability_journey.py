"""The local stack's output: worker lines carry their invocation's context, metric lines are valid EMF."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.integration.test_upload_journey import new_user, settled_file, upload

pytestmark = pytest.mark.integration

SECRET_WORDS = ("dbb74894e82415a2f7ff0ec3a97e4183", "password", "Bearer ", "@example.com")


def _json_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                found.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line still being written
    return found


def _wait_for(stack: Any, found: Any, timeout: float = 20) -> list[dict[str, Any]]:
    """The stack's JSON lines once `found(lines)` holds (metrics are written as the invocation ends)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = _json_lines(stack.logs())
        if found(lines) or time.monotonic() > deadline:
            return lines
        time.sleep(0.2)


def test_a_processed_file_can_be_followed_and_its_run_is_measured(stack: Any) -> None:
    bearer = new_user(stack, paid=True)
    file_id, sent = upload(stack, bearer, "observed.txt", b"one two three")
    assert sent.status_code == 204, sent.text
    assert settled_file(stack, bearer, file_id)["status"] == "completed"

    def processed(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [line for line in lines if line.get("file_id") == file_id and line.get("message") == "file processed"]

    def measured(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [line for line in lines if "_aws" in line and line.get("function") == "process_upload_events"]

    lines = _wait_for(stack, lambda lines: processed(lines) and measured(lines))
    [line] = processed(lines)
    assert (
        line["function"] == "process_upload_events"
        and line["request_id"] != "-"
        and isinstance(line["cold_start"], bool)
    )
    documents = measured(lines)
    assert any("HandlerDuration" in document for document in documents)
    for document in (line for line in lines if "_aws" in line):
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"].startswith("PaidUpload/")
        text = json.dumps(document)
        assert not any(word in text for word in SECRET_WORDS), text
