"""Property-based fuzzing of the live local stack with schemathesis: every operation of the
served `GET /api/openapi.json`, positive and negative data, every check.

The stack is the real one (tests/stack.py); a paid user calls the user routes and a superuser
whose session passed the second factor (tests/second_factor.py) the admin routes, each with a
fresh access token per operation (a fuzzed logout revokes the token it was sent with),
sent with each request. Checks:
all of schemathesis's, except that `positive_data_acceptance` is replaced by a stricter
variant that knows each route's declared refusals (`declare.Refusal`: a weak password, a
forged cursor, an unknown token are refused although no schema can say so); plus every error
in the contract's shape. Hypothesis is derandomized (a fixed seed): a run is repeatable and a
failure prints a reproducing `curl`.

`make test` runs `FUZZ_EXAMPLES` (default 40) cases per operation; `make fuzz` many more.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

import app
from chalicelib.core.declare import Route
from chalicelib.openapi import document as openapi
from tests import second_factor
from tests.journeys import paid_customer
from tests.stack import PROJECT_DIR, RunningStack, start_stack

pytestmark = pytest.mark.integration

EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "40"))
PASSWORD = "fuzzing root password"
ROUTES: dict[tuple[str, str], Route] = {(route.method, route.path): route for route in app.app.declarations}

# Text that JSON and URLs can carry and Python decodes, but that broke handlers before
# (issue 14): digits that `str.isdigit` accepts and `int` refuses, NUL, a bidi override, and
# lone surrogates (valid JSON escapes that UTF-8 cannot encode: refused as `validation_error`).
HOSTILE_TEXT = ["²", "١٢", "\x00", "\u202etxt.exe", "𝟙𝟚"]
LONE_SURROGATES = ["\ud800", "x\udfffy"]
HOSTILE_QUERY = ["²", "١٢", "1" * 5000, "-0", "1e3", "\x00", "%", ".."]


@dataclass
class Callers:
    """The fuzzer's sessions: refresh tokens, and the access token minted for each operation."""

    base_url: str
    refresh: dict[str, str]
    access: dict[tuple[str, str], str] = field(default_factory=dict)

    def token(self, role: str, operation: str) -> str:
        if (role, operation) not in self.access:
            reply = requests.post(f"{self.base_url}/api/refresh/", json={"refresh": self.refresh[role]}, timeout=60)
            reply.raise_for_status()
            self.refresh[role] = reply.json()["refresh"]
            self.access[(role, operation)] = reply.json()["access"]
        return self.access[(role, operation)]


def _superuser_session(stack: Any, base_url: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "local.manage_user", "--username", "fuzzroot", "--password", PASSWORD]
    command += ["--role", "superuser"]
    subprocess.run(command, cwd=PROJECT_DIR, env=stack.tool_env(), check=True, capture_output=True)
    return second_factor.log_in(second_factor.over_requests(requests.Session(), base_url), "fuzzroot", PASSWORD)


# The document the stack serves, built from the same declarations in this process (so the
# operations are known when tests are collected); a test checks the two are the same.
schema = schemathesis.openapi.from_dict(openapi.document("http://stack", app.app.declarations))
# Tokens are the fuzzer's own (sent by the test); `ignored_auth` still tries every protected
# operation without one.
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], with_security_parameters=False
)
CALLERS = Callers("", {})


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of its own (its lockouts and rate limits stay out of the other tests'), with a
    paid user and a superuser whose session passed the second factor."""
    running = start_stack(tmp_path_factory.mktemp("fuzz") / "stack.log")
    base_url = running.url("").rstrip("/")
    user = paid_customer(base_url, "fuzzer")
    CALLERS.base_url = base_url
    CALLERS.refresh = {"user": user.log_in()["refresh"], "superuser": _superuser_session(running, base_url)["refresh"]}
    yield running
    running.stop()


def test_the_stack_serves_the_document_fuzzed(fuzz_stack: RunningStack) -> None:
    served = requests.get(fuzz_stack.url("/api/openapi.json"), timeout=60).json()
    assert {**served, "servers": []} == {**schema.raw_schema, "servers": []}


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


HOSTILE = {*HOSTILE_TEXT, *LONE_SURROGATES, *HOSTILE_QUERY}


def _hostile(case: Any) -> bool:
    sent = [case.body if isinstance(case.body, dict) else {}, case.query or {}, case.path_parameters or {}]
    return any(isinstance(value, str) and value in HOSTILE for values in sent for value in values.values())


def _route(case: Any) -> Route:
    path = case.operation.path
    return ROUTES[(case.operation.method.upper(), path if path.endswith(".json") else path.rstrip("/"))]


@schemathesis.check
def error_in_contract_shape(ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any) -> bool:
    """Every 4xx/5xx body is `{"error": {"code", "message", "details"?}}`."""
    if response.status_code < 400:
        return True
    body = json.loads(response.content)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) <= {"code", "message", "details"} and {"code", "message"} <= set(error), error
    assert isinstance(error["code"], str) and error["code"].islower(), error
    assert isinstance(error["message"], str) and error["message"], error
    return True


ACCEPTED = {401, 403, 404, 409, 429}  # schemathesis's own list: who may call, what exists, state, pace


@schemathesis.check
def positive_data_accepted_or_refused_as_declared(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: Any
) -> bool | None:
    """A request this document accepts is answered 2xx/3xx, or refused for who calls, what exists
    or the state things are in (401, 403, 404, 409, 429), or with one of the route's declared
    refusals (naming only its fields)."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code < 400:
        return None
    if _hostile(case):  # a hook swapped a value for one the schema may not allow: other checks judge it
        return None
    if response.status_code in ACCEPTED or response.status_code >= 500:  # 5xx: not_a_server_error's
        return None
    error = json.loads(response.content)["error"]
    details = error.get("details") or {}
    for refusal in _route(case).refused:
        if refusal.code == error["code"] and (not refusal.fields or set(details) <= set(refusal.fields)):
            return None
    raise AssertionError(f"Valid data refused: {response.status_code} {error}")


@schema.parametrize()
@hypothesis_settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_survives_every_check(case: schemathesis.Case, fuzz_stack: RunningStack) -> None:
    """The superuser's token for `/api/admin/*`, the paid user's for the other protected routes."""
    headers = None
    if _route(case).auth:
        token = CALLERS.token("superuser" if case.path.startswith("/api/admin/") else "user", case.operation.label)
        headers = {"Authorization": f"Bearer {token}"}
    case.call_and_validate(base_url=CALLERS.base_url, headers=headers, excluded_checks=[positive_data_acceptance])
