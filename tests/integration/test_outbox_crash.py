"""A SIGKILL between a commit and its email's delivery loses nothing: the job is in the outbox.

The stack's own process runs the outbox stream's relay and the mail worker (local/stack.py); the
API answers from processes of its own and DynamoDB Local is a JVM of its own. Stopping the stack's
process (SIGSTOP) therefore freezes every delivery while a registration commits; then every
process of the stack is SIGKILLed, and the stack started again on the same state.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import requests

from tests import mailbox
from tests.stack import start_stack

pytestmark = pytest.mark.integration


def test_a_sigkill_after_the_commit_loses_no_email(tmp_path: Path) -> None:
    first = start_stack(tmp_path / "first.log")
    address = "crash@example.com"
    try:
        os.kill(first.process.pid, signal.SIGSTOP)  # the relay and the workers stop; the API answers on
        registered = requests.post(
            first.url("/api/register/"),
            json={"username": "crash", "email": address, "password": "a long enough password"},
            timeout=30,
        )
        assert registered.status_code == 201, registered.text
    finally:
        first.kill()  # SIGKILL reaches a stopped process too
    outbox = first.state_dir / "outbox"
    assert not outbox.exists() or not list(outbox.glob("*.eml"))  # nothing was delivered before the kill

    second = start_stack(tmp_path / "second.log", state_dir=first.state_dir)
    try:
        (link,) = mailbox.wait_for_links(outbox, address, "verify", timeout=60)
        sent = [path for path in outbox.glob("*.eml") if address in path.read_text(errors="replace")]
        assert len(sent) == 1, link  # relayed once, from the stream the kill left behind
    finally:
        second.stop()
