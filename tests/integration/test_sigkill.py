"""`kill -9` of the whole stack in the middle of 20 concurrent journeys loses nothing it
acknowledged: every request answered 2xx is still reflected after a restart, every file whose
bytes reached S3 is counted, and the statistics equal `make recount`."""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.journeys import Customer
from tests.stack import PROJECT_DIR, RunningStack, start_stack

pytestmark = pytest.mark.integration

JOURNEYS = 20
KILL_AFTER_UPLOADS = 8  # bytes in S3 for this many files, the other journeys anywhere on their way


@dataclass
class Acknowledged:
    """What the stack answered 2xx to, per journey."""

    customer: Customer
    registered: bool = False
    access: str | None = None  # a session that was opened
    paid: str | None = None  # transaction id answered as settled
    files: dict[str, int] = field(default_factory=dict)  # file id -> words, bytes accepted by S3
    logged_out: str | None = None  # an access token whose logout was answered 204


def _journey(ledger: Acknowledged, index: int, uploaded: threading.Semaphore) -> None:
    customer = ledger.customer
    try:
        customer.register()
        ledger.registered = True
        first = customer.log_in()["access"]
        customer.log_in()  # a second session: the first one is logged out below
        ledger.access = customer.bearer["Authorization"].removeprefix("Bearer ")
        answer = requests.post(customer.url("/api/logout/"), headers={"Authorization": f"Bearer {first}"}, timeout=30)
        if answer.status_code == 204:
            ledger.logged_out = first
        ledger.paid = customer.pay()
        for number in range(3):
            words = index + number + 1
            content = " ".join(f"w{n}" for n in range(words)).encode()
            file_id = customer.upload(f"f{number}.txt", content)  # returns after S3's 204
            ledger.files[file_id] = words
            uploaded.release()
    except (requests.RequestException, AssertionError):
        pass  # the stack was killed under this journey: what it acknowledged is in the ledger


def test_sigkill_mid_burst_loses_nothing_acknowledged(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = start_stack(tmp_path / "first.log", state_dir=state)
    ledgers = [
        Acknowledged(Customer(requests.Session(), first.api, f"kill{i}x{tmp_path.name[-6:]}", "kill test password"))
        for i in range(JOURNEYS)
    ]
    uploaded = threading.Semaphore(0)
    threads = [threading.Thread(target=_journey, args=(ledger, i, uploaded)) for i, ledger in enumerate(ledgers)]
    try:
        for thread in threads:
            thread.start()
        for _ in range(KILL_AFTER_UPLOADS):
            assert uploaded.acquire(timeout=120), "the journeys did not get far enough to be killed mid-way"
        first.kill()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        first.stop()
    in_flight = sum(1 for ledger in ledgers if len(ledger.files) < 3)
    assert in_flight > 0, "every journey had finished: the kill came too late to test anything"

    second = start_stack(tmp_path / "second.log", state_dir=state)
    try:
        for ledger in ledgers:
            _check(ledger, second)
        recount = subprocess.run(
            [sys.executable, "-m", "local.recount"],
            cwd=PROJECT_DIR,
            env=second.tool_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        assert recount.returncode == 0, recount.stdout + recount.stderr
        assert '"status": 500' not in second.logs()
    finally:
        second.stop()


def _check(ledger: Acknowledged, stack: RunningStack) -> None:
    customer = ledger.customer
    customer.api = stack.api
    customer.http = requests.Session()
    if ledger.registered:
        customer.log_in()  # the account and its password hash
    if ledger.access:
        me = requests.get(stack.url("/api/me/"), headers={"Authorization": f"Bearer {ledger.access}"}, timeout=30)
        assert me.status_code == 200, (customer.username, me.text)  # the session survived
    if ledger.logged_out:
        gone = requests.get(stack.url("/api/me/"), headers={"Authorization": f"Bearer {ledger.logged_out}"}, timeout=30)
        assert gone.status_code == 401, customer.username  # and so did its revocation
    if ledger.paid:
        assert customer.get("/api/me/")["user"]["has_paid"] is True
        payment = customer.get(f"/api/transactions/{ledger.paid}/")
        assert payment["status"] == "success"
        actions = [entry["action"] for entry in customer.get("/api/activity/?limit=100")["items"]]
        assert actions.count("payment_success") == 1
    listed = {item["id"] for item in customer.get("/api/files/?limit=100")["items"]} if ledger.registered else set()
    for file_id in ledger.files:
        assert file_id in listed, (customer.username, file_id)
    for file_id, words in ledger.files.items():
        settled = customer.wait_settled(file_id, timeout=120)
        assert (settled["status"], settled["word_count"]) == ("completed", words), settled
