"""Unit-test fixtures: a fresh moto account per test with every resource created."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler

from chalicelib import aws


@pytest.fixture
def aws_resources() -> Iterator[dict[str, Any]]:
    """Everything `make run` creates, inside moto's in-process mock."""
    with mock_aws():
        aws.client.cache_clear()
        from local import bootstrap

        yield bootstrap.ensure_all(visibility_timeout=2)
    aws.client.cache_clear()


@pytest.fixture
def client(aws_resources: dict[str, Any]) -> Iterator[Client]:
    import app

    with Client(app.app) as test_client:
        yield test_client


class Api:
    """A thin JSON helper over chalice's test client."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def call(self, method: str, path: str, body: Any = None, token: str | None = None, **headers: str) -> Any:
        import json

        request_headers = {"Content-Type": "application/json", **headers}
        if token:
            request_headers["Authorization"] = f"Bearer {token}"
        payload = json.dumps(body) if body is not None and not isinstance(body, (str, bytes)) else body
        response = getattr(self.client.http, method.lower())(path, headers=request_headers, body=payload)
        response.data = json.loads(response.body) if response.body else None
        return response

    def register(self, username: str = "alice", password: str = "correct horse", email: str | None = None) -> Any:
        return self.call(
            "POST",
            "/api/register/",
            {"username": username, "email": email or f"{username}@example.com", "password": password},
        )

    def login(self, username: str = "alice", password: str = "correct horse") -> dict[str, Any]:
        response = self.call("POST", "/api/login/", {"username": username, "password": password})
        assert response.status_code == 200, response.data
        return response.data

    def signed_up(self, username: str = "alice") -> str:
        """Register and log in; returns an access token."""
        assert self.register(username).status_code == 201
        return self.login(username)["access"]


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client)


@pytest.fixture
def atomic_dynamodb(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serialize moto's DynamoDB requests, as DynamoDB itself applies each one atomically.

    moto checks a transaction's conditions, then writes, and rolls a cancelled one back by
    restoring a deep copy of every table it touched, with no lock: under threads a loser's
    rollback can erase the winner's committed writes. That is moto's race, not the app's.
    """
    lock = threading.RLock()
    call_action = DynamoHandler.call_action

    def serialized(self: DynamoHandler) -> Any:
        with lock:
            return call_action(self)

    monkeypatch.setattr(DynamoHandler, "call_action", serialized)
