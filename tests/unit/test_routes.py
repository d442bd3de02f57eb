"""Every route of the app, taken from the app itself: all but the public ones need a token."""

from __future__ import annotations

import re

import pytest
from chalice.test import Client

import app
from tests.unit.conftest import Api

# The only routes anyone may call without a bearer token (contract: auth "none").
PUBLIC = {
    "/",
    "/api/health",
    "/api/openapi.json",
    "/api/register",
    "/api/login",
    "/api/login/mfa",
    "/api/login/passkey",
    "/api/login/passkey/options",
    "/api/refresh",
    "/api/password/forgot",
    "/api/password/reset",
    "/api/email/verify",
    "/api/payment/success",
    "/api/payment/fail",
    "/api/payment/cancel",
    "/dashboard",
    "/dashboard/{asset}",
}
ROUTES = sorted((path, method) for path, methods in app.app.routes.items() for method in methods)
PROTECTED = [(path, method) for path, method in ROUTES if path not in PUBLIC]


def test_the_public_routes_exist() -> None:
    """A renamed public route would otherwise silently join the protected list."""
    assert {path for path, _ in ROUTES} >= PUBLIC


@pytest.mark.parametrize(("path", "method"), PROTECTED)
def test_every_protected_route_answers_401_without_a_token(client: Client, path: str, method: str) -> None:
    concrete = re.sub(r"\{[^}]+\}", "0" * 32, path) + "/"
    response = client.http.request(method, concrete, headers={"Content-Type": "application/json"}, body=b"{}")
    assert response.status_code == 401, (method, concrete, response.body)
    assert b'"error"' in response.body


def test_health_answers_ok_and_an_unknown_method_405_in_the_contract_shape(api: Api) -> None:
    assert api.call("GET", "/api/health/").data == {"status": "ok"}
    response = api.call("PUT", "/api/me/")
    assert response.status_code == 405
    assert response.data["error"]["code"] == "method_not_allowed"
