"""`make run`'s process: prints where each part listens, Ctrl-C leaves nothing running, and the
next start brings every account, payment, file and queued upload back (`--fresh`: nothing)."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
import requests

from local.state import SNAPSHOT_NAME
from tests.journeys import Customer, paid_customer
from tests.stack import RunningStack, group_alive, start_stack

pytestmark = pytest.mark.integration


def test_ctrl_c_stops_every_part(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "stack.log")
    try:
        output = stack.logs()
        for part in ("DynamoDB", "S3 SQS", "aamarPay", "API", "Dashboard"):
            assert part in output
        stack.process.send_signal(signal.SIGINT)
        assert stack.process.wait(timeout=15) == 0
    finally:
        stack.stop()
    assert "Stopped." in stack.logs()
    # Every part was in the stack's process group: none is left. (Its ports are no proof under
    # pytest-xdist: another worker's stack may take a freed port at once.)
    deadline = time.monotonic() + 15
    while group_alive(stack.process.pid):
        assert time.monotonic() < deadline, "a part of the stack outlived Ctrl-C"
        time.sleep(0.05)


def _same_customer(customer: Customer, stack: RunningStack) -> Customer:
    """The customer (and their tokens) talking to a restarted stack on its new ports."""
    again = Customer(requests.Session(), stack.api, customer.username, customer.password)
    again.bearer = customer.bearer
    return again


@pytest.mark.parametrize("engine", ["dynamodb-local", "moto"])
def test_a_restart_keeps_accounts_payments_files_and_queued_uploads(tmp_path: Path, engine: str) -> None:
    state = tmp_path / "state"
    on = {"EMULATOR": engine}
    first = start_stack(tmp_path / "first.log", state_dir=state, extra_env=on)
    try:
        customer = paid_customer(first.api, "keeper")
        counted = customer.upload("counted.txt", b"one two three")
        assert customer.wait_settled(counted)["word_count"] == 3
        just_before_stop = customer.upload("late.txt", b"stored just before the stop")
    finally:
        assert first.stop() == 0
    assert "emulator state saved" in first.logs()

    second = start_stack(tmp_path / "second.log", state_dir=state, extra_env=on)
    try:
        customer = _same_customer(customer, second)  # the access token from before still works
        assert customer.get("/api/me/")["user"]["has_paid"] is True
        payments = customer.get("/api/transactions/")["items"]
        assert [p["status"] for p in payments] == ["success"]
        activity = [a["action"] for a in customer.get("/api/activity/")["items"]]
        assert activity.count("payment_success") == 1
        assert customer.wait_settled(counted)["word_count"] == 3
        late = customer.wait_settled(just_before_stop)
        assert (late["status"], late["word_count"]) == ("completed", 5)
        assert requests.get(late["download_url"], timeout=10).content == b"stored just before the stop"
        customer.log_in()  # the password hash survived too
    finally:
        second.stop()

    fresh = start_stack(tmp_path / "fresh.log", state_dir=state, args=("--fresh",), extra_env=on)
    try:
        forgotten = requests.post(
            fresh.url("/api/login/"), json={"username": "keeper", "password": "keeper password"}, timeout=10
        )
        assert forgotten.status_code == 401
        assert requests.get(fresh.url("/api/me/"), headers=customer.bearer, timeout=10).status_code == 401
    finally:
        fresh.stop()


def test_incompatible_state_is_refused_whole_with_a_message_naming_fresh(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = start_stack(tmp_path / "first.log", state_dir=state)
    first.stop()
    snapshot = state / SNAPSHOT_NAME
    header, payload = snapshot.read_bytes().split(b"\n", 1)
    older = json.loads(header) | {"schema": "0123456789abcdef"}
    snapshot.write_bytes(json.dumps(older).encode() + b"\n" + payload)

    with pytest.raises(RuntimeError, match=r"incompatible with this version.*make run FRESH=1"):
        start_stack(tmp_path / "refused.log", state_dir=state)
    assert snapshot.read_bytes().startswith(json.dumps(older).encode())  # left as it was

    snapshot.write_bytes(b"not a snapshot\n")
    with pytest.raises(RuntimeError, match=r"not a snapshot this project wrote.*FRESH=1"):
        start_stack(tmp_path / "garbage.log", state_dir=state)


@pytest.mark.parametrize(("kept_by", "started_with"), [("dynamodb-local", "moto"), ("moto", "dynamodb-local")])
def test_state_kept_by_one_engine_is_refused_by_the_other(tmp_path: Path, kept_by: str, started_with: str) -> None:
    """Switching EMULATOR would silently start with empty tables: refused, naming both ways out."""
    state = tmp_path / "state"
    start_stack(tmp_path / "first.log", state_dir=state, extra_env={"EMULATOR": kept_by}).stop()
    with pytest.raises(RuntimeError, match=r"keeps its DynamoDB tables in .*FRESH=1"):
        start_stack(tmp_path / "refused.log", state_dir=state, extra_env={"EMULATOR": started_with})
