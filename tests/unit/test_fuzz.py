"""Property-based fuzzing of every route in the OpenAPI document (schemathesis).

The app runs in-process (Chalice's local gateway on moto, the aamarPay sandbox on
loopback) behind a small WSGI adapter, so schemathesis drives it like any WSGI app: it
loads `GET /api/openapi.json` from it and generates valid and invalid requests for each
operation. Checks: no 5xx, every error in the contract's shape, status codes, content
types and bodies as documented. Derandomized with a bounded number of examples, so a run
is repeatable and fast; a failure prints a reproducing `curl`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import quote

import pytest
import schemathesis
from chalice.config import Config
from chalice.local import LocalGateway, LocalGatewayException
from chalice.test import Client
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from moto import mock_aws
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

import app
from chalicelib.accounts import accounts
from chalicelib.core import aws
from chalicelib.core.config import settings
from chalicelib.core.models import User
from chalicelib.payments import aamarpay
from local import bootstrap
from local.sandbox import SandboxServer
from tests.unit.conftest import Api

EXAMPLES_PER_OPERATION = 10
# These two demand that the schema say exactly which inputs are valid (every pattern,
# length and cross-field rule, cursors that are opaque yet signed): the fragments do not,
# and a schema-valid but refused input is a 400, which the other checks still judge.
NEEDS_AN_EXACT_SCHEMA = [positive_data_acceptance, negative_data_rejection]


class ChaliceWsgi:
    """WSGI in front of Chalice's local gateway (the one `chalice.test.Client` uses, whose
    response wrapper cannot take the body-less answer of Chalice's built-in OPTIONS)."""

    def __init__(self) -> None:
        self.gateway = LocalGateway(app.app, Config())

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("RAW_URI") or quote(environ.get("PATH_INFO", "/").encode("latin-1"))
        if environ.get("QUERY_STRING") and "?" not in path:
            path = f"{path}?{environ['QUERY_STRING']}"
        headers = {name[5:].replace("_", "-").title(): value for name, value in environ.items() if name[:5] == "HTTP_"}
        if environ.get("CONTENT_TYPE"):
            headers["Content-Type"] = environ["CONTENT_TYPE"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        try:
            answer = self.gateway.handle_request(environ["REQUEST_METHOD"], path, headers, body)
        except LocalGatewayException as error:  # no such route: chalice's API-Gateway-style 403
            answer = {"statusCode": error.CODE, "headers": error.headers, "body": error.body}
        status, raw = answer["statusCode"], answer.get("body") or b""
        if answer.get("isBase64Encoded"):
            raw = base64.b64decode(raw)
        start_response(f"{status} {HTTPStatus(status).phrase}", list((answer.get("headers") or {}).items()))
        return [raw.encode() if isinstance(raw, str) else raw]


schema = schemathesis.openapi.from_wsgi("/api/openapi.json", ChaliceWsgi())


# Text that JSON and URLs can carry and Python decodes, but that broke handlers before
# (issue 14): lone surrogates (valid JSON escapes, not encodable as UTF-8), digits that
# `str.isdigit` accepts and `int` refuses, NUL, a bidi override, a 5,000-digit number.
HOSTILE_TEXT = ["²", "١٢", "\x00", "\u202etxt.exe", "𝟙𝟚"]
LONE_SURROGATES = ["\ud800", "x\udfffy"]  # only JSON escapes carry them: form encoders refuse them
HOSTILE_QUERY = ["²", "١٢", "1" * 5000, "-0", "1e3", "\x00", "%", ".."]  # also used as path parameters


def _with_one_replaced(values: dict[str, Any], names: list[str], hostile: list[str]) -> st.SearchStrategy[Any]:
    """The generated values as they are, or with one of `names` set to a hostile value."""
    replaced = st.builds(lambda name, value: {**values, name: value}, st.sampled_from(names), st.sampled_from(hostile))
    return st.one_of(st.just(values), replaced)


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    names = [name for name, value in body.items() if isinstance(value, str)] if isinstance(body, dict) else []
    if not names:
        return st.just(body)
    is_json = all(alternative.media_type == "application/json" for alternative in context.operation.body)
    return _with_one_replaced(body, names, HOSTILE_TEXT + LONE_SURROGATES if is_json else HOSTILE_TEXT)


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any]
) -> st.SearchStrategy[Any]:
    return _with_one_replaced(path_parameters, list(path_parameters), HOSTILE_QUERY) if path_parameters else st.just({})


@schema.hook
def flatmap_query(context: schemathesis.HookContext, query: dict[str, Any]) -> st.SearchStrategy[Any]:
    return _with_one_replaced(query, list(query), HOSTILE_QUERY) if query else st.just(query)


@dataclass
class Callers:
    """Bearer tokens of the fuzzer's accounts, fresh for each operation's moto account."""

    user: str = ""
    superuser: str = ""


CALLERS = Callers()


@schema.auth()
class BearerTokens:
    """A paid user's token for the user routes, a superuser's for `/api/admin/*`."""

    def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
        return CALLERS.superuser if case.path.startswith("/api/admin/") else CALLERS.user

    def set(self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


BearerTokens.refresh_interval = None  # tokens change with each operation's accounts: never cache


def _token(username: str, role: str) -> str:
    """A paid account's token; a superuser's session passed the second factor (staff routes ask it)."""
    user = accounts.create_user(username, f"{username}@example.com", "fuzzing password", role=role)
    user.update(actions=[User.has_paid.set(True)])  # uploads open only after a payment
    if role == "superuser":
        with Client(app.app) as client:
            return str(Api(client).staff_login(username, "fuzzing password")["access"])
    return accounts.login({"username": username, "password": "fuzzing password"}, client_ip="127.0.0.1")["access"]


@pytest.fixture(scope="module")
def callers(sandbox_server: SandboxServer) -> Iterator[Callers]:
    """One moto account and gateway sandbox for the whole run (state accumulates across
    operations, as on a live stack); per-operation setup would cost more than the fuzzing."""
    with mock_aws(), pytest.MonkeyPatch.context() as patch:
        patch.setenv("AAMARPAY_BASE_URL", sandbox_server.url)  # never the real gateway
        settings.cache_clear()
        aamarpay.client.cache_clear()
        aws.client.cache_clear()
        bootstrap.ensure_all()
        CALLERS.user, CALLERS.superuser = _token("fuzzer", "user"), _token("fuzzroot", "superuser")
        yield CALLERS
    CALLERS.user = CALLERS.superuser = ""
    for cached in (settings, aamarpay.client, aws.client):
        cached.cache_clear()


@schemathesis.check
def error_in_contract_shape(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> bool:
    """Every 4xx/5xx JSON body is `{"error": {"code", "message", "details"?}}`."""
    if response.status_code < 400:
        return True
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "details"} and {"code", "message"} <= set(error), error
    assert isinstance(error["code"], str) and error["code"].islower(), error
    assert isinstance(error["message"], str) and error["message"], error
    return True


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_route_survives_fuzzing(case: schemathesis.Case, callers: Callers) -> None:
    case.call_and_validate(excluded_checks=NEEDS_AN_EXACT_SCHEMA)
