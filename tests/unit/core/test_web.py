"""The HTTP edge under hostile input and its headers: clear 400s, never a 500.

Each case here answered 500 before its fix (issue 14): `?limit=²`, an integer of 5,000
digits, NaN, nesting deeper than the decoder's stack, a lone surrogate in a field.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.core import errors, pagination, web
from chalicelib.core.config import settings
from chalicelib.core.validation import Fields, is_scalar_text
from tests.unit.conftest import Api

LONE_SURROGATE = "\\ud800"  # as a JSON escape: json.loads makes it a str that UTF-8 refuses


def _request(raw: bytes, content_type: str = "application/json") -> Any:
    return SimpleNamespace(raw_body=raw, headers={"content-type": content_type})


def _contract_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.body
    assert response.headers["Content-Type"] == web.JSON_TYPE
    body = json.loads(response.body)
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


# --- json_body -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        b'{"size": ' + b"1" * 5000 + b"}",  # past Python's int-string limit: ValueError
        b'{"size": NaN}',
        b'{"size": -Infinity}',
        b"[" * 50_000,  # RecursionError in the decoder
        b'{"a":' * 10_000,
        b'{"a": "\xff"}',
        b'{"a": 1',
    ],
    ids=["5000-digits", "nan", "infinity", "deep-array", "deep-object", "bad-utf8", "truncated"],
)
def test_malformed_json_is_a_400(raw: bytes) -> None:
    with pytest.raises(errors.ValidationError) as raised:
        web.json_body(_request(raw))
    assert raised.value.code == "malformed_json"


def test_a_long_but_convertible_integer_is_still_json() -> None:
    assert web.json_body(_request(b'{"size": ' + b"9" * 4000 + b"}"))["size"] == int("9" * 4000)


# --- parse_limit -----------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["²", "١٢", "1²", "0", "101", "-1", " 5", "5\n", "1" * 5000, "0" * 4999 + "1"])
def test_limits_other_than_ascii_1_to_100_are_refused(raw: str) -> None:
    with pytest.raises(errors.ValidationError) as raised:
        pagination.parse_limit(raw)
    assert raised.value.code == "invalid_limit"


@pytest.mark.parametrize(("raw", "limit"), [(None, 20), ("", 20), ("1", 1), ("007", 7), ("100", 100)])
def test_valid_limits(raw: str | None, limit: int) -> None:
    assert pagination.parse_limit(raw) == limit


# --- Fields.string ---------------------------------------------------------------------


def test_a_lone_surrogate_is_a_field_error_and_other_text_is_not() -> None:
    body = json.loads('{"email": "a' + LONE_SURROGATE + '@example.com", "name": "বাংলা 😀"}')
    fields = Fields(body)
    assert fields.string("email") is None
    assert fields.string("name") == "বাংলা 😀"  # a surrogate *pair* is one scalar value
    with pytest.raises(errors.ValidationError) as raised:
        fields.done()
    assert set(raised.value.details) == {"email"}
    assert not is_scalar_text("\udfff") and is_scalar_text("😀")


# --- through the app -------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["%C2%B2", "%D9%A1", "1" * 5000])
def test_lists_answer_400_for_unusual_limits(api: Api, limit: str) -> None:
    token = api.signed_up()
    for path in ("/api/files/", "/api/transactions/", "/api/activity/"):
        _contract_error(api.call("GET", f"{path}?limit={limit}", None, token), 400, "invalid_limit")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/register/", {"username": "bob" + LONE_SURROGATE, "email": "b@example.com"}, "username"),
        ("/api/register/", {"username": "bobby", "email": "b" + LONE_SURROGATE + "@example.com"}, "email"),
        ("/api/register/", {"username": "bobby", "email": "b@example.com", "password": LONE_SURROGATE * 9}, "password"),
        ("/api/login/", {"username": "b" + LONE_SURROGATE, "password": "correct horse"}, "username"),
        ("/api/login/", {"username": "b@example.com" + LONE_SURROGATE, "password": "correct horse"}, "username"),
    ],
)
def test_a_lone_surrogate_in_an_account_field_is_a_400(api: Api, path: str, body: dict[str, str], field: str) -> None:
    payload = {"password": "correct horse", **body}
    raw = json.dumps(payload).replace("\\\\ud800", LONE_SURROGATE)  # json.dumps escaped our backslash
    error = _contract_error(api.call("POST", path, raw), 400, "validation_error")
    assert set(error["details"]) == {field}


def test_a_huge_integer_in_a_body_is_a_400(api: Api) -> None:
    raw = '{"username": "bobby", "email": "b@example.com", "password": "correct horse", "n": ' + "7" * 5000 + "}"
    _contract_error(api.call("POST", "/api/register/", raw), 400, "malformed_json")


# --- headers ---------------------------------------------------------------------------


def test_every_kind_of_response_says_nosniff(api: Api) -> None:
    token = api.signed_up()
    answers = {
        "json": api.call("GET", "/api/me/", None, token),
        "error": api.call("GET", "/api/me/"),
        "chalice's own 405": api.call("PUT", "/api/me/"),
        "204": api.call("POST", "/api/logout/", {}, token),
        "redirect": api.call("GET", "/"),
        "html": api.client.http.get("/dashboard/"),
        "script": api.client.http.get("/dashboard/app.js"),
        "missing asset": api.client.http.get("/dashboard/nope.js"),
        "openapi": api.call("GET", "/api/openapi.json"),
    }
    statuses = {name: response.status_code for name, response in answers.items()}
    assert statuses == {
        "json": 200,
        "error": 401,
        "chalice's own 405": 405,
        "204": 204,
        "redirect": 302,
        "html": 200,
        "script": 200,
        "missing asset": 404,
        "openapi": 200,
    }
    assert {name: r.headers.get("X-Content-Type-Options") for name, r in answers.items()} == dict.fromkeys(
        answers, "nosniff"
    )
    assert [name for name, r in answers.items() if "Content-Security-Policy" in r.headers] == ["html"]


def _directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for directive in policy.split(";"):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


def test_the_dashboard_page_carries_a_strict_csp(api: Api) -> None:
    response = api.client.http.get("/dashboard/")
    assert response.headers["Content-Type"].startswith("text/html")
    policy = _directives(response.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]  # scripts, styles, images: our files only, nothing inline
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]
    assert not any("unsafe" in value for values in policy.values() for value in values)


def test_connect_src_allows_the_api_and_the_bucket_origin(api: Api) -> None:
    policy = _directives(api.client.http.get("/dashboard/").headers["Content-Security-Policy"])
    # moto in-process presigns AWS's own virtual-hosted URL
    assert policy["connect-src"] == ["'self'", f"https://{settings().upload_bucket}.s3.amazonaws.com"]


def test_connect_src_follows_a_configured_s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.core import aws

    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:4566")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.client.cache_clear()
    try:
        assert web.upload_origin() == "http://127.0.0.1:4566"
    finally:
        aws.client.cache_clear()


def test_a_gateway_return_with_a_lone_surrogate_is_rejected_and_its_security_event_written(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    raw = '{"mer_txnid": "t' + LONE_SURROGATE + '", "pay_status": "Successful", "extra": "' + LONE_SURROGATE + '"}'
    with caplog.at_level("WARNING", logger="paidupload"):
        response = api.call("POST", "/api/payment/success/", raw, Accept="application/json")
    _contract_error(response, 400, "invalid_callback")
    (event,) = [record for record in caplog.records if record.getMessage() == "payment return rejected"]
    json.dumps(event.fields, ensure_ascii=False).encode("utf-8")  # the log writer could not write it before
