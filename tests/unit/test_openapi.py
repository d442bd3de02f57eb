"""The OpenAPI document describes exactly the routes the app serves, and is valid OpenAPI 3."""

from __future__ import annotations

from openapi_spec_validator import validate

import app
from chalicelib.openapi import document as openapi

UNDOCUMENTED = {("/", "GET"), ("/dashboard/{asset}", "GET")}  # redirects and static files


def _served() -> set[tuple[str, str]]:
    routes = set()
    for path, methods in app.app.routes.items():
        for method in methods:
            if (path, method) in UNDOCUMENTED:
                continue
            routes.add((path if path.endswith((".json", "/")) else path + "/", method))
    return routes


def _documented() -> set[tuple[str, str]]:
    document = openapi.document("http://localhost:8000", app.app.declarations)
    return {(path, method.upper()) for path, operations in document["paths"].items() for method in operations}


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    assert _served() - _documented() == set(), "routes missing from the OpenAPI document"
    assert _documented() - _served() == set(), "documented routes the app does not serve"


def test_document_is_valid_openapi() -> None:
    validate(openapi.document("http://localhost:8000", app.app.declarations))


def test_document_is_served_with_the_request_base(api) -> None:
    response = api.call("GET", "/api/openapi.json")
    assert response.status_code == 200
    assert response.data["servers"] == [{"url": "http://testserver"}]


def test_the_issue_34_mismatches_are_answered_as_documented(api) -> None:
    """Each input the document refuses is refused, each it allows is taken (issue 34's list)."""
    from chalicelib.accounts import accounts

    user = api.signed_up("alice")
    accounts.create_user("root", "root@example.com", "long enough", role="superuser")
    root = api.staff_login("root", "long enough")["access"]
    refused = [
        ("POST", "/api/login/", {"username": "", "password": ""}, None, "validation_error"),
        ("POST", "/api/logout/", {"refresh": False}, user, "validation_error"),
        ("POST", "/api/logout/", {"refresh": {}}, user, "validation_error"),
        ("GET", "/api/files/?limit=", None, user, "invalid_limit"),
        ("GET", "/api/admin/stats/daily/?days=", None, root, "validation_error"),
        ("GET", "/api/admin/transactions/?user_id=", None, root, "invalid_filter"),
        ("GET", "/api/admin/transactions/export/?from=2026-01-01&to=2026-01-02&status=", None, root, "invalid_filter"),
        ("POST", f"/api/admin/users/{'0' * 32}/staff/", {"is_staff": False, "x": True}, root, "validation_error"),
        ("POST", "/api/password/reset/", {"token": "a" * 5000, "new_password": "long enough"}, None, "invalid_token"),
    ]
    for method, path, body, token, code in refused:
        answer = api.call(method, path, body, token)
        assert (answer.status_code, answer.data["error"]["code"]) == (400, code), (path, body, answer.data)
    keyed = api.call("POST", "/api/initiate-payment/", {}, user, **{"Idempotency-Key": "é"})
    assert keyed.status_code == 400  # documented: printable ASCII only
    blank_search = api.call("GET", "/api/admin/users/?q=", None, root)
    assert blank_search.status_code == 200  # documented: blank lists everyone
