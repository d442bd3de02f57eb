"""The real local stack under many clients at once: bursts queue, and the emulator's DynamoDB
stays atomic (no 500, no success answered for a write that is later undone)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from chalicelib.core import clock
from tests.journeys import Customer

pytestmark = pytest.mark.integration


def _all_at_once(count: int, work: Callable[[int], Any]) -> list[Any]:
    """Run `work(i)` in `count` real threads released together; returns results (or exceptions)."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as error:  # reported by the assertions, with the others
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _burst_of_raw_requests(url: str, count: int) -> list[bytes | Exception]:
    """`count` clients connecting at the same instant, each sending one GET."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or 80)
    request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()

    def exchange(_: int) -> bytes:
        with socket.create_connection(address, timeout=60) as sock:
            sock.sendall(request)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
            return answer

    return _all_at_once(count, exchange)


@pytest.mark.parametrize("server", ["api", "emulator", "sandbox"])
def test_200_simultaneous_connections_are_all_answered(stack: Any, server: str) -> None:
    url = {
        "api": stack.url("/api/health/"),
        "emulator": stack.aws_endpoint + "/moto-api/",
        "sandbox": stack.sandbox + "/__sandbox/faults",
    }[server]
    answers = _burst_of_raw_requests(url, 200)
    failures = [a for a in answers if isinstance(a, Exception) or not a.startswith(b"HTTP/1.")]
    assert failures == []


def _no_emulator_faults(stack: Any) -> None:
    """moto's races showed as these tracebacks, and as 500s answered by the API."""
    logs = stack.logs()
    assert "dictionary changed size during iteration" not in logs
    assert '"status": 500' not in logs


def _customer(stack: Any) -> Customer:
    customer = Customer(requests.Session(), stack.api, f"load{clock.new_id()[:12]}", "load test password")
    customer.register()
    customer.log_in()
    return customer


def test_emulator_transactions_are_atomic_under_threads(stack: Any) -> None:
    """Racing conditional transactions straight at the stack's DynamoDB: each answers success or a
    cancellation, never a 500, and every write answered as committed is there afterwards."""
    dynamodb = boto3.client(
        "dynamodb",
        endpoint_url=stack.dynamodb_endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, max_pool_connections=50),  # a 500 must surface
    )
    table, run = "paidupload-local-claims", clock.new_id()[:10]

    def transact(thread: int) -> list[tuple[str, str]]:
        outcomes = []
        for round_ in range(15):
            contested, own = f"race#{run}#{round_}", f"race#{run}#{round_}#{thread}"
            items = [
                {
                    "Put": {
                        "TableName": table,
                        "Item": {"key": {"S": key}},
                        "ConditionExpression": "attribute_not_exists(#k)",
                        "ExpressionAttributeNames": {"#k": "key"},
                    }
                }
                for key in (own, contested)
            ]
            try:
                dynamodb.transact_write_items(TransactItems=items)
                outcomes.append(("committed", own))
            except ClientError as error:
                outcomes.append((error.response["Error"]["Code"], own))
        return outcomes

    results = _all_at_once(16, transact)
    outcomes = [o for r in results for o in r]
    assert {code for code, _ in outcomes} <= {"committed", "TransactionCanceledException"}, outcomes
    committed = [key for code, key in outcomes if code == "committed"]
    assert len(committed) == 15  # one winner per contested key
    for key in committed:
        assert "Item" in dynamodb.get_item(TableName=table, Key={"key": {"S": key}}, ConsistentRead=True), key
    _no_emulator_faults(stack)


@pytest.mark.parametrize("attempt", range(3))  # moto's race did not show on every round
def test_ten_simultaneous_initiations_with_one_key_make_one_payment(stack: Any, attempt: int) -> None:
    customer = _customer(stack)

    def initiate(_: int) -> requests.Response:
        return requests.post(
            stack.url("/api/initiate-payment/"),
            json={},
            headers={**customer.bearer, "Idempotency-Key": "one-key"},
            timeout=60,
        )

    answers = _all_at_once(10, initiate)
    assert not [a for a in answers if isinstance(a, Exception)]
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}, [a.text for a in answers]
    assert 201 in statuses
    created = {a.json()["transaction_id"] for a in answers if a.status_code == 201}
    assert len(created) == 1
    listed = customer.get("/api/transactions/")["items"]
    assert [p["transaction_id"] for p in listed] == list(created)
    refused = {a.json()["error"]["code"] for a in answers if a.status_code == 409}
    assert refused <= {"idempotency_key_in_use"}
    _no_emulator_faults(stack)


def test_simultaneous_registrations_of_one_name_make_one_account(stack: Any) -> None:
    username = f"race{clock.new_id()[:12]}"

    def register(index: int) -> requests.Response:
        body = {"username": username, "email": f"{username}{index}@example.com", "password": "race password"}
        return requests.post(stack.url("/api/register/"), json=body, timeout=60)

    answers = _all_at_once(12, register)
    statuses = sorted(a.status_code for a in answers if not isinstance(a, Exception))
    assert statuses == [201] + [409] * 11, [getattr(a, "text", a) for a in answers]
    login = requests.post(stack.url("/api/login/"), json={"username": username, "password": "race password"})
    assert login.status_code == 200
    _no_emulator_faults(stack)


def test_many_customers_registering_at_once_all_get_accounts(stack: Any) -> None:
    customers = _all_at_once(20, lambda _: _customer(stack))
    assert not [c for c in customers if isinstance(c, Exception)], customers
    for customer in customers:
        assert customer.get("/api/me/")["user"]["username"] == customer.username
    _no_emulator_faults(stack)


def test_unknown_path_with_an_authorization_header_is_404_in_the_contract_shape(stack: Any) -> None:
    answer = requests.get(stack.url("/api/no-such-thing/"), headers={"Authorization": "Bearer whatever"}, timeout=10)
    assert answer.status_code == 404
    assert answer.json() == {"error": {"code": "not_found", "message": "No such resource."}}
