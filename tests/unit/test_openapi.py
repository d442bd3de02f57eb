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
