"""The real local stack over HTTP: register → login → me → refresh → logout."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = pytest.mark.integration


def test_auth_journey_over_http(stack) -> None:
    session = requests.Session()
    credentials = {"username": "journey", "password": "journey password"}
    registered = session.post(stack.url("/api/register/"), json={**credentials, "email": "journey@example.com"})
    assert registered.status_code == 201, registered.text
    assert registered.headers["Content-Type"].startswith("application/json")

    tokens = session.post(stack.url("/api/login/"), json=credentials).json()
    bearer = {"Authorization": f"Bearer {tokens['access']}"}
    me = session.get(stack.url("/api/me/"), headers=bearer)
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "journey"

    rotated = session.post(stack.url("/api/refresh/"), json={"refresh": tokens["refresh"]})
    assert rotated.status_code == 200
    assert session.post(stack.url("/api/refresh/"), json={"refresh": tokens["refresh"]}).status_code == 401

    new_bearer = {"Authorization": f"Bearer {rotated.json()['access']}"}
    logout = session.post(stack.url("/api/logout/"), json={"refresh": rotated.json()["refresh"]}, headers=new_bearer)
    assert logout.status_code == 204
    assert session.get(stack.url("/api/me/"), headers=new_bearer).status_code == 401


def test_logs_are_json_lines_without_secrets(stack) -> None:
    password = "a-very-secret-password"
    requests.post(
        stack.url("/api/register/"), json={"username": "logcheck", "email": "l@example.com", "password": password}
    )
    tokens = requests.post(stack.url("/api/login/"), json={"username": "logcheck", "password": password}).json()
    requests.get(stack.url("/api/me/"), headers={"Authorization": f"Bearer {tokens['access']}"})
    logs = stack.logs()
    assert password not in logs
    assert tokens["access"] not in logs
    assert tokens["refresh"] not in logs
    assert '"message": "request"' in logs and '"request_id"' in logs


def test_unknown_path_answers_404_in_the_contract_shape(stack) -> None:
    response = requests.get(stack.url("/api/no-such-thing/"))
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such resource."}}


@pytest.mark.parametrize("path", ["/api/me/", "/api/no-such-thing/", "/dashboard/"])
@pytest.mark.parametrize("method", ["TRACE", "PATCH", "PUT", "PROPFIND", "FOO"])
def test_every_method_on_every_path_answers_a_json_error_with_the_security_headers(stack, path, method) -> None:
    response = requests.request(method, stack.url(path))
    assert response.status_code in (404, 405), response.text
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Content-Type"].startswith("application/json")
    assert set(response.json()["error"]) == {"code", "message"}


TOO_MANY_HEADERS = b"GET / HTTP/1.1" + b"".join(b"\r\nX-%d: 1" % n for n in range(120))


@pytest.mark.parametrize("request_line", [b"GET /" + b"a" * 70_000 + b" HTTP/1.1", TOO_MANY_HEADERS])
def test_a_malformed_request_is_answered_in_the_contract_shape(stack, request_line: bytes) -> None:
    """http.server's own refusals (an over-long URI, too many headers) are JSON too, not HTML.
    (A request line it cannot even read a version from gets an HTTP/0.9 answer: no headers at all.)"""
    host, port = urlsplit(stack.url("/")).hostname, urlsplit(stack.url("/")).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request_line + b"\r\nHost: x\r\n\r\n")
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert int(head.split()[1]) >= 400, head
    assert b"X-Content-Type-Options: nosniff" in head, head
    assert set(json.loads(body)["error"]) == {"code", "message"}, body
