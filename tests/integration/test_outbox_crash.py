"""A SIGKILL between a commit and its email's delivery loses nothing: the job is in the outbox.

The stack's own process runs the outbox stream's relay and the mail worker (local/stack.py); the
API answers from processes of its own and DynamoDB Local is a JVM of its own. Stopping the stack's
process (SIGSTOP) therefore freezes every delivery while a registration commits; then every
process of the stack is SIGKILLed, and the stack started again on the same state.

DynamoDB Local answers a write a moment before its SQLite commit is on disk (a kill -9 right after
the answer lost the write in 3 of 8 tries, none of 18 after 0.2 s: docs/local-stack.md), which
DynamoDB itself never does; so the kill waits for the commit, and the test is about the outbox.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import time
from contextlib import closing
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
        _wait_until_on_disk(first.state_dir, "paidupload-local-outbox")
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


def _wait_until_on_disk(state_dir: Path, table: str) -> None:
    """Until a row of `table` is committed to DynamoDB Local's SQLite file: a second connection
    sees committed transactions only (its tables are named after DynamoDB's)."""
    database = state_dir / "dynamodb" / "shared-local-instance.db"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1)) as connection:
                if connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]:
                    return
        except sqlite3.OperationalError:  # locked by its writer for a moment
            pass
        time.sleep(0.02)
    raise AssertionError(f"no row of {table} reached DynamoDB Local's file")
