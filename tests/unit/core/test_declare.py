"""The declarations' checks and their JSON Schema say the same thing: for any value, a field's
`problem` is None exactly when the document's schema for it accepts the value."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft4Validator, ValidationError, validators

import app
from chalicelib.core import errors
from chalicelib.core.declare import Body, Field, Integer, Param, Route, Text, _ecma
from chalicelib.core.validation import password_problem


def _ecma_pattern(validator: Any, pattern: str, value: Any, schema: dict[str, Any]) -> Iterator[ValidationError]:
    """JSON Schema patterns are ECMA-262's: `$` only at the very end (Python's also before a final newline)."""
    if validator.is_type(value, "string") and not re.search(_ecma(pattern), value):
        yield ValidationError(f"{value!r} does not match {pattern!r}")


Checker = validators.extend(Draft4Validator, {"pattern": _ecma_pattern})
FIELDS: list[tuple[str, Field]] = sorted(
    {
        (f"{route.method} {route.path} {name}", kind)
        for route in app.app.declarations
        for body in ([route.body] if route.body else [])
        for name, kind in {**body.required, **body.optional}.items()
    },
    key=lambda pair: pair[0],
)
VALUES = st.one_of(
    st.text(),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789@._+- \t\n\x1e\x85\ufeff"),
    st.sampled_from(["", " ", "a@b.c", "a@b.c\n", "\x1e", "\ufeff", "en", "bn", "x" * 1001]),
    st.integers(),
    st.booleans(),
    st.floats(allow_nan=False),
    st.lists(st.integers(), max_size=2),
)


def _schema(kind: Field) -> dict[str, Any]:
    return {key: value for key, value in kind.schema().items() if key != "description"}


@pytest.mark.parametrize(("where", "kind"), FIELDS, ids=[where for where, _ in FIELDS])
@settings(max_examples=200, deadline=None, derandomize=True)
@given(value=VALUES)
def test_every_declared_field_refuses_exactly_what_its_schema_refuses(where: str, kind: Field, value: Any) -> None:
    """A `rule` (a password's length in bytes) refuses more, as the route's `refused` declares:
    everything else a field refuses, its schema refuses too, and nothing more."""
    schema_part = dataclasses.replace(kind, rule=None) if isinstance(kind, Text) else kind
    assert (schema_part.problem(value) is None) == Checker(_schema(kind)).is_valid(value), (where, value)
    if isinstance(kind, Text) and kind.rule is not None and schema_part.problem(value) is None:
        assert kind.problem(value) == kind.rule(value)


def test_a_rule_refuses_with_its_own_message_after_the_schema_checks() -> None:
    password = Text(rule=password_problem)
    assert password.problem("short") == "Password must be at least 8 bytes."
    assert password.problem("৳৳৳") is None  # 9 bytes in 3 characters
    assert password.problem("   ") == "This field may not be blank."
    body = Body(required={"username": Text(pattern="^[a-z]{3,}$", message="Bad."), "password": password})
    assert body.problems({"username": "a", "password": "short"}) == {
        "username": "Bad.",
        "password": "Password must be at least 8 bytes.",
    }


def test_a_body_refuses_extra_properties_and_treats_null_as_absent() -> None:
    body = Body(required={"a": Text()}, optional={"b": Integer()})
    assert body.problems({"a": "x", "b": None}) == {}
    assert body.problems({"a": None}) == {"a": "This field is required."}
    assert body.problems({"a": "x", "c": 1}) == {"c": "Unknown field."}
    assert body.problems({"a": " ", "b": True}) == {"a": "This field may not be blank.", "b": "Must be an integer."}


LIMIT = {"limit": Param(Integer(minimum=1, maximum=100), code="invalid_limit")}


@pytest.mark.parametrize(("raw", "accepted"), [("20", True), ("100", True), ("", False), ("0", False), ("²", False)])
def test_a_query_integer_takes_ascii_digits_in_range_only(raw: str, accepted: bool) -> None:
    route = Route("GET", "/x", "x", "x", {}, query=LIMIT)
    if accepted:
        route.check_query({"limit": raw})
        return
    with pytest.raises(errors.ValidationError) as raised:
        route.check_query({"limit": raw})
    assert (raised.value.code, raised.value.message) == ("invalid_limit", "limit must be an integer from 1 to 100.")


def test_a_required_query_parameter_is_required() -> None:
    route = Route("GET", "/x", "x", "x", {}, query={"from": Param(Text(is_date=True), required=True)})
    with pytest.raises(errors.ValidationError, match="from is required"):
        route.check_query({})
    with pytest.raises(errors.ValidationError, match="from give a date"):
        route.check_query({"from": "2026-02-30"})
    route.check_query({"from": "2026-02-28"})
