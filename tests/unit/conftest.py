"""Unit-test fixtures: a fresh moto account per test with every resource created."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client
from moto import mock_aws

from chalicelib.core.config import app_secrets, settings
from chalicelib.payments import aamarpay
from local import emulator
from local.sandbox import Sandbox, SandboxServer
from tests import second_factor


@pytest.fixture
def aws_resources() -> Iterator[dict[str, Any]]:
    """Everything `make run` creates, inside moto's in-process mock. The botocore clients are
    kept from test to test (moto intercepts a client whenever it was made; making them anew
    cost each test about 0.1 CPU-s)."""
    with mock_aws():
        from local import bootstrap

        yield bootstrap.ensure_all(visibility_timeout=2)


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

    def post(self, path: str, body: dict[str, Any], token: str | None) -> tuple[int, Any]:
        """`second_factor.Post` over this client."""
        response = self.call("POST", path, body, token)
        return response.status_code, response.data

    def staff_login(self, username: str, password: str = "correct horse") -> dict[str, Any]:
        """Tokens of a session that passed the second factor (enrolling the account if needed):
        what every staff route asks of staff and superusers."""
        return second_factor.log_in(self.post, username, password)

    def signed_up(self, username: str = "alice") -> str:
        """Register and log in; returns an access token."""
        assert self.register(username).status_code == 201
        return self.login(username)["access"]


@pytest.fixture
def api(client: Client) -> Api:
    return Api(client)


ROLES = ("user", "staff", "superuser")


@pytest.fixture
def tokens(api: Api) -> dict[str, str]:
    """An access token per role (staff and superuser past the second factor), and each
    role's user id as `<role>_id`."""
    from chalicelib.accounts import accounts

    result = {}
    for role in ROLES:
        user = accounts.create_user(role, f"{role}@example.com", "long enough", role=role)
        log_in = api.login if role == "user" else api.staff_login
        result[role] = log_in(role, "long enough")["access"]
        result[f"{role}_id"] = user.id
    return result


@pytest.fixture
def atomic_dynamodb() -> Iterator[None]:
    """Serialize moto's DynamoDB requests, as DynamoDB itself applies each one atomically
    (the same switch `make run` and every test stack use: local/emulator.py says why)."""
    undo = emulator.make_dynamodb_atomic()
    yield
    undo()


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(port=0, delay_seconds=3.0).start()
    yield server
    server.stop()


@pytest.fixture
def gateway(aws_resources: dict[str, Any], sandbox_server: SandboxServer) -> Iterator[Sandbox]:
    """The app configured for the sandbox (AAMARPAY_BASE_URL), with short client timeouts.

    `settings()` and `client()` are cached per process: cleared here and again afterwards so
    no other test sees this sandbox. The configured client's 10 s read timeout (x3 attempts)
    would make every timeout case take half a minute, hence the same client with shorter ones.
    """
    configured_client = aamarpay.client
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AAMARPAY_BASE_URL", sandbox_server.url)
        settings.cache_clear()
        configured_client.cache_clear()
        configured = configured_client()
        assert configured.base_url == sandbox_server.url
        fast = aamarpay.AamarPayClient(
            configured.base_url,
            configured.store_id,
            app_secrets().aamarpay_signature_key,
            connect_timeout=1,
            read_timeout=1.5,  # generous: the machine may be busy; the sandbox stalls 3 s
            search_attempts=1,  # retries are the client's own business (tests/unit/payments/test_gateway.py)
        )
        patch.setattr(aamarpay, "client", lambda: fast)
        sandbox_server.sandbox.reset()
        yield sandbox_server.sandbox
    settings.cache_clear()
    configured_client.cache_clear()
