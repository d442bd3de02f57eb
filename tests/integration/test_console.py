"""`make run`'s console: a journey in a few readable lines; the JSON logs and EMF documents in
`LOCAL_STATE_DIR/stack.log`."""

from __future__ import annotations

import re
import time

import pytest
import requests

from local.console import LOG_NAME

pytestmark = pytest.mark.integration


def test_a_request_is_one_line_and_an_email_shows_its_link(stack) -> None:
    body = {"username": "consoleann", "email": "consoleann@example.com", "password": "correct horse"}
    assert requests.post(stack.url("/api/register/"), json=body, timeout=60).status_code == 201
    request_line = re.compile(r"^POST /api/register/ 201 \d+ ms$", re.MULTILINE)
    deadline = time.monotonic() + 60
    # The access line is printed once the answer is sent, the mail line by another process: wait for both.
    while "To consoleann@example.com" not in stack.console() or not request_line.search(stack.console()):
        assert time.monotonic() < deadline, stack.console()[-3000:]
        time.sleep(0.05)
    console = stack.console().splitlines()
    mail = next(line for line in console if "To consoleann@example.com" in line)
    assert re.fullmatch(
        rf"mail: To consoleann@example\.com \| Subject .+ \| {re.escape(stack.api)}/dashboard/\?verify=\S+", mail
    )
    assert not [line for line in console if line.startswith("{")], "JSON on the console"
    assert any(line.startswith(f"Logs          {stack.state_dir / LOG_NAME} (") for line in console)
    kept = (stack.state_dir / LOG_NAME).read_text()
    assert '"message": "request"' in kept and '"_aws"' in kept  # a JSON log line and an EMF document
    assert "POST /api/register/ 201" in kept and "To consoleann@example.com" in kept  # the file reads whole
